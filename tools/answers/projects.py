"""batch-export-projects: which project ids this key may use.

PostHog says it two ways: the key's own record (`@current`) lists the projects it is limited to
(none listed = every project of its user), and the project list names them, for keys allowed to
read it (scope project:read).
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from tools.declaration import READ, ToolSpec
from tools.params import Arguments, Params
from tools.upstream import Upstream

CURRENT_KEY = "/api/personal_api_keys/@current/"
PROJECTS = "/api/projects/"
_LIST_SCOPES = ("*", "project:read", "project:write")


class ProjectsParams(Arguments):
    # Also what gives the tool a property: Gemini refuses a function whose parameters object has none
    # (docs/architecture.md, "Every agent framework").
    name_contains: str | None = Field(None, min_length=1, max_length=200, description="Name contains (any case).")


class ProjectsAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    projects: list[dict[str, Any]]


async def projects(upstream: Upstream, params: ProjectsParams, request: Any = None) -> dict[str, Any]:
    key = await upstream.request("GET", CURRENT_KEY)
    key = key if isinstance(key, dict) else {}
    scoped = [int(t) for t in key.get("scoped_teams") or [] if isinstance(t, int)]
    scopes = [str(s) for s in key.get("scopes") or []]
    named: dict[int, dict[str, Any]] = {}
    listing_note = None
    if any(s in _LIST_SCOPES for s in scopes):
        try:
            page = await upstream.request("GET", PROJECTS, query={"limit": 200})
        except Exception as error:  # the list is a nicety: the key's own record already answers
            listing_note = f"PostHog's project list was not readable ({error})."
        else:
            for item in (page or {}).get("results") or []:
                if isinstance(item, dict) and isinstance(item.get("id"), int):
                    named[item["id"]] = {"project_id": item["id"], "name": item.get("name")}
    else:
        listing_note = "Project names need a key with scope project:read; this key has " + (", ".join(scopes) or "none")
    limited = bool(scoped)
    if params.name_contains is not None:
        if named:
            wanted = params.name_contains.casefold()
            named = {t: p for t, p in named.items() if wanted in str(p.get("name") or "").casefold()}
            scoped = [t for t in scoped if t in named]
        else:  # no names to match: every usable id, and say so
            unread = "name_contains was not applied: no project names were readable."
            listing_note = f"{listing_note.rstrip('.')}. {unread}" if listing_note else unread
    if limited:
        found = [named.get(t, {"project_id": t}) for t in scoped]
        answer: dict[str, Any] = {"projects": found, "limited_to_these": True}
    else:
        answer = {"projects": list(named.values()), "limited_to_these": False}
        answer["note"] = "The key is not limited to projects: it may use every project its user can access."
    if listing_note:
        answer["listing"] = listing_note
    return answer


TOOLS = [
    ToolSpec(
        name="batch-export-projects",
        title="Usable projects",
        description="Which PostHog project ids this key may use.",
        method="GET",
        path=CURRENT_KEY,
        scope=READ,
        # The one tool about the key rather than a project: it takes no project_id (the server
        # neither adds a pinned one nor builds a project upstream from it).
        params=cast("type[Params]", ProjectsParams),
        output=ProjectsAnswer,
        handler=projects,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
]
