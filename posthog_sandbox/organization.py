"""The sandbox's organizations (which projects each holds) and the people of the key user's one, as
PostHog's `UserBasicSerializer` shows them (docs/posthog-api.md, "Activity log").

Every personal API key belongs to user 1; the others appear as the authors of seeded activity-log entries
and integrations, so "who changed what" has more than one answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class User:
    id: int
    first_name: str
    last_name: str
    email: str
    role_at_organization: str | None

    @property
    def uuid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"posthog-sandbox-user:{self.id}"))

    @property
    def distinct_id(self) -> str:
        # PostHog's distinct ids are opaque strings; a stable one per user is enough here.
        return uuid.uuid5(uuid.NAMESPACE_DNS, f"user-{self.id}.sandbox").hex

    def basic(self) -> dict[str, Any]:
        """`UserBasicSerializer`: the nested user of activity-log entries and of `created_by`."""
        return {
            "id": self.id,
            "uuid": self.uuid,
            "distinct_id": self.distinct_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "is_email_verified": True,
            "hedgehog_config": None,
            "role_at_organization": self.role_at_organization,
        }


# The key user belongs to organization A (projects 1 and 2, current project 1); project 3 is in another one.
USER_ORGANIZATION = "0195f5c0-0000-7000-8000-00000000000a"
OTHER_ORGANIZATION = "0195f5c0-0000-7000-8000-00000000000b"
PROJECTS = {1: USER_ORGANIZATION, 2: USER_ORGANIZATION, 3: OTHER_ORGANIZATION}
CURRENT_PROJECT = 1

# User 1 holds every key; the others are colleagues in the same organization (projects 1 and 2).
KEY_USER = User(1, "Alex", "Rivera", "alex.rivera@acme.example", "engineering")
COLLEAGUES = (
    User(2, "Priya", "Shah", "priya.shah@acme.example", "data"),
    User(3, "Sam", "Okafor", "sam.okafor@acme.example", "engineering"),
    User(4, "Jordan", "Lee", "jordan.lee@acme.example", "product"),
)
BY_ID = {user.id: user for user in (KEY_USER, *COLLEAGUES)}


def basic(user_id: int | None) -> dict[str, Any] | None:
    """The nested user for an id (None for PostHog's system actor, or a user no longer known)."""
    user = BY_ID.get(user_id) if user_id is not None else None
    return user.basic() if user else None
