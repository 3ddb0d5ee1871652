"""A local stand-in for PostHog's batch-exports API, written from docs/posthog-api.md, not from our client.

It imports nothing from `tools/` or the rest of `server/`: a mistake in our client models must not be
mirrored on both sides of the wire.
"""

from .app import create_app
from .config import DEFAULT_API_KEY, SandboxConfig, SandboxKey
from .control import SandboxControl
from .server import RunningSandbox, start_sandbox

__all__ = [
    "DEFAULT_API_KEY",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxControl",
    "SandboxKey",
    "create_app",
    "start_sandbox",
]
