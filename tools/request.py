"""From a declaration and its validated parameters to the request PostHog receives.

`build_request` is pure: the same declaration and parameters give the same request, and
nothing is sent. A tool's handler receives this request and amends it
(`dataclasses.replace`) instead of restating the route.
"""

from __future__ import annotations

from tools.declaration import ToolSpec
from tools.params import Params
from tools.upstream import Request, path_for


def build_request(spec: ToolSpec, params: Params) -> Request:
    """The request `spec` declares for these parameters (see ToolSpec for the rules)."""
    values = params.model_dump(mode="json", exclude_none=True)
    values.pop("project_id", None)
    path = path_for(spec.path, **{name: values.pop(name) for name in spec.path_params})
    query = {name: values.pop(name) for name in spec.query if name in values}
    query.update(spec.fixed_query or {})
    body = values if spec.method in ("POST", "PATCH") else None
    return Request(method=spec.method, path=path, query=query, body=body)
