"""The one PostHog request budget per key (server/budget/pacing.py), PostHog's limits (server/budget/limits.py)
and the ledger that counts them, in this process or in Redis (server/budget/ledger.py)."""

from server.budget.limits import PUBLISHED, ClassLimits, Rate, RequestClass, parse_limits, request_class
from server.budget.pacing import Budget, confirmed

__all__ = ["PUBLISHED", "Budget", "ClassLimits", "Rate", "RequestClass", "confirmed", "parse_limits", "request_class"]
