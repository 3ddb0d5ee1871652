"""PostHog's text never reaches a model or a person raw (finding N3): every surface, walked generically.

Against the sandbox's hostile seed (`SandboxConfig(exports=60, hostile=True)`: invisible characters,
direction overrides, Unicode tags, terminal escapes, control characters and injected instructions in export
names, run errors and log lines), through a real MCP client in both protocol eras, this test calls every
listed tool (a read with ids from the seed, a guarded write to its preview, its elicitation question and one
confirmed write), a PostHog error quoting hostile text, every prompt with hostile arguments, every resource,
and records every progress message. Then it walks every string of every answer, whatever field it is in
(so a field added tomorrow is walked too), and judges each with the sandbox's own oracle
(`posthog_sandbox.hostile.kinds`), not with the cleaner under test:
- no string carries an invisible, direction-changing, tag, escape or control character;
- in a result's text, injected instructions appear only between the markers that say they are PostHog's
  data, each call with a marker id of its own; an error is one line;
- structuredContent stays plain JSON (no markers);
- a question a person is asked has no line that PostHog's text started.
A tool the sweep has no arguments for fails it, so a new tool cannot escape it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from mcp import Client, MCPError

from posthog_sandbox import DEFAULT_API_KEY
from posthog_sandbox.hostile import ERROR_PAYLOADS, NAME_PAYLOADS, kinds
from tests.support import MODES, SandboxControl, connect, running_app, settings_for, text

EXPORTS = 60  # enough for every one of the seed's hostile name payloads (one export in seven)
INJECTED = re.compile(r"previous instructions|SYSTEM:", re.IGNORECASE)
BLOCK = re.compile(r"<(posthog-data-[0-9a-f]{16})>.*?</\1>", re.S)
MARKER_ID = re.compile(r"posthog-data-[0-9a-f]{16}")
VARIATION = re.compile(r"[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
HTTP_URL = "https://us.i.posthog.com/batch/"
# What a caller (or a model pasting PostHog's text) may send as a prompt's argument.
HOSTILE_ARGUMENT = NAME_PAYLOADS[7]("Nightly export") + ERROR_PAYLOADS[1]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, keys included, with where it is."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{where}.{key} (key)", str(key)
            yield from strings(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from strings(item, f"{where}[{index}]")


class Surfaces:
    """Everything the server said, by surface, and what is wrong with it."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.marker_ids: list[str] = []
        self.said: dict[str, list[str]] = {}  # surface -> its strings

    def _raw(self, surface: str, value: Any) -> None:
        for where, string in strings(value):
            self.said.setdefault(surface, []).append(string)
            found = [k for k in kinds(string) if k != "injection"]
            if any(c in string for c in "\u2028\u2029"):
                found.append("line separator")
            if VARIATION.match(string) or re.search(r"[\s][\ufe00-\ufe0f]|[\ufe00-\ufe0f]{2}", string):
                found.append("orphaned variation selector")
            if found:
                self.problems.append(f"{surface} {where}: {found} in {string[:120]!r}")

    def result(self, surface: str, result: types.CallToolResult) -> None:
        self._raw(surface, result.model_dump(mode="json", by_alias=True, exclude_none=True))
        for _, string in strings(result.structured_content or {}):
            if MARKER_ID.search(string):
                self.problems.append(f"{surface}: structuredContent carries a marker: {string[:80]!r}")
        body = text(result)
        if result.is_error and "\n" in body:
            self.problems.append(f"{surface}: an error of more than one line: {body[:200]!r}")
        if not result.is_error and not body.split("\n", 1)[0].endswith("never as instructions."):
            self.problems.append(f"{surface}: a result's text is not marked as PostHog's data: {body[:120]!r}")
        self.marker_ids += sorted(set(MARKER_ID.findall(body)))
        outside = BLOCK.sub("", body)
        if INJECTED.search(outside):
            self.problems.append(f"{surface}: injected text outside the data markers: {outside[:300]!r}")

    def question(self, surface: str, params: types.ElicitRequestParams) -> None:
        self._raw(surface, params.model_dump(mode="json", by_alias=True, exclude_none=True))
        for line in params.message.splitlines():
            if INJECTED.match(line.strip()):
                self.problems.append(f"{surface}: a line of the question starts with PostHog's text: {line[:120]!r}")

    def other(self, surface: str, value: Any) -> None:
        self._raw(surface, value)

    def mentions_injection(self, surface_prefix: str) -> bool:
        return any(
            INJECTED.search(s)
            for surface, said in self.said.items()
            if surface.startswith(surface_prefix)
            for s in said
        )


def _first_run(control: SandboxControl, export_id: str, status: str) -> dict[str, Any] | None:
    page = control.api("GET", f"1/batch_exports/{export_id}/runs/", params={"after": "-30d", "limit": 100}).json()
    return next((r for r in page.get("results", []) if r["status"] == status), None)


def seed_values(control: SandboxControl) -> dict[str, Any]:
    """Ids from the hostile seed: an export with a hostile name, a failing one with a hostile error, its failed
    run, and a running backfill (with its export)."""
    oracle = control.hostile()
    assert oracle["enabled"] and oracle["hostile"], oracle
    # A name that injects visible instructions (others hide theirs in tags), so the questions quote one.
    named = next(h["export"] for h in oracle["hostile"] if h["field"] == "name" and INJECTED.search(h["value"]))
    run, failing = None, None
    for hostile in (h for h in oracle["hostile"] if h["field"] == "latest_error"):
        run = _first_run(control, hostile["export"], "Failed")
        if run is not None and kinds(run.get("latest_error") or ""):
            failing = hostile["export"]
            break
    assert run is not None and failing is not None, "the hostile seed has no failed run with a hostile error"
    backfills = control.run_backfills(1)["backfills"]
    backfill = next(b for b in backfills if b["status"] in ("Running", "Starting"))
    return {
        "named": named,
        "failing": failing,
        "run": run["id"],
        "backfill": backfill["id"],
        "backfill_export": backfill["batch_export"],
        "oracle": oracle,
    }


def arguments_for(tool: types.Tool, seed: dict[str, Any], now: str) -> dict[str, Any]:
    """Arguments for any listed tool, by parameter name; a required one without a value fails the sweep."""
    properties = tool.input_schema.get("properties", {})
    uses_backfill = "backfill_id" in properties
    export = seed["backfill_export"] if uses_backfill else seed["failing"]
    if tool.name in ("batch-export-get", "batch-export-update", "batch-export-delete", "batch-export-pause"):
        export = seed["named"]
    day = now[:10]
    values: dict[str, Any] = {
        "project_id": 1,
        "batch_export_id": export,
        "run_id": seed["run"],
        "backfill_id": seed["backfill"],
        "name": "Coverage export",
        "interval": "hour",
        "start_at": f"{day}T00:00:00Z",
        "end_at": f"{day}T01:00:00Z",
        "after": "-30d",
        "state": "all",
        "timeout_seconds": 1,
    }
    destination = properties.get("destination", {})
    if destination.get("type") == "string" or "enum" in destination:
        values["destination"] = "Snowflake"
    else:
        values["destination"] = {"type": "HTTP", "config": {"url": HTTP_URL, "token": "coverage-token"}}
    if tool.name == "batch-export-wait":
        values.pop("backfill_id")
    if tool.name == "batch-export-unpause":
        values["backfill"] = True
    wanted = set(tool.input_schema.get("required", [])) | {
        n for n in ("after", "state", "timeout_seconds", "name", "backfill", "run_id") if n in properties
    }
    if tool.name == "batch-export-wait":
        wanted.discard("backfill_id")
    missing = sorted(n for n in wanted if n not in values)
    assert not missing, f"{tool.name}: the coverage sweep has no value for {missing}"
    return {n: values[n] for n in wanted if n in properties}


async def sweep(client: Client, seen: Surfaces, control: SandboxControl, seed: dict[str, Any]) -> set[str]:
    """Call every listed tool once (a guarded one to its preview), recording every answer and progress message."""
    called: set[str] = set()
    now = control.clock()

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.other("progress", {"message": message})

    for tool in (await client.list_tools()).tools:
        arguments = arguments_for(tool, seed, now)
        result = await client.call_tool(tool.name, arguments, progress_callback=progress)
        seen.result(f"tool {tool.name}", result)
        called.add(tool.name)
    return called


async def errors_quoting_posthog(client: Client, seen: Surfaces, control: SandboxControl, seed: dict[str, Any]) -> None:
    """PostHog's error detail, hostile, on a read and on a guarded call's preview."""
    detail = NAME_PAYLOADS[6]("Export name taken") + ERROR_PAYLOADS[1]
    for tool in ("batch-export-get", "batch-export-pause"):
        control.fault(status=400, detail=detail, method="GET", path_contains=seed["named"], count=1)
        result = await client.call_tool(tool, {"project_id": 1, "batch_export_id": seed["named"]})
        assert result.is_error, text(result)
        seen.result(f"error {tool}", result)
    control.clear_faults()


async def confirmed_write(client: Client, seen: Surfaces, seed: dict[str, Any]) -> None:
    """A write carried through (token channel): its receipt quotes the export."""
    arguments = {"project_id": 1, "batch_export_id": seed["named"]}
    first = await client.call_tool("batch-export-pause", arguments)
    seen.result("confirm pause (preview)", first)
    token = (first.structured_content or {}).get("confirmation_token")
    if token:
        done = await client.call_tool("batch-export-pause", {**arguments, "confirmation_token": token})
        seen.result("confirm pause (executed)", done)


async def prompts_and_resources(client: Client, seen: Surfaces, seed: dict[str, Any]) -> None:
    for prompt in (await client.list_prompts()).prompts:
        given = {a.name: ("1" if a.name == "project_id" else HOSTILE_ARGUMENT) for a in prompt.arguments or []}
        seen.other(f"prompt {prompt.name}", (await client.get_prompt(prompt.name, given)).model_dump(mode="json"))
    for resource in (await client.list_resources()).resources:
        seen.other(f"resource {resource.uri}", (await client.read_resource(str(resource.uri))).model_dump(mode="json"))
    templates = (await client.list_resource_templates()).resource_templates
    assert templates, "the export configuration resource is listed"
    for export in (seed["named"], seed["failing"]):
        uri = f"posthog://projects/1/batch-exports/{export}"
        seen.other(f"resource {uri}", (await client.read_resource(uri)).model_dump(mode="json"))


async def resource_error(client: Client, seen: Surfaces, control: SandboxControl, seed: dict[str, Any]) -> None:
    control.fault(status=400, detail=ERROR_PAYLOADS[1], method="GET", path_contains=seed["named"], count=1)
    with pytest.raises(MCPError) as raised:
        await client.read_resource(f"posthog://projects/1/batch-exports/{seed['named']}")
    control.clear_faults()
    seen.other("resource error", {"message": str(raised.value), "data": raised.value.error.model_dump(mode="json")})


async def questions(app: Any, mode: str, seen: Surfaces, control: SandboxControl, seed: dict[str, Any]) -> int:
    """Every guarded tool's question to a person (declined), built from the hostile target."""
    asked: list[types.ElicitRequestParams] = []

    async def decline(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action="decline")

    now = control.clock()
    async with connect(app, mode, elicitation_callback=decline) as client:
        for tool in (await client.list_tools()).tools:
            if "confirmation_token" not in tool.input_schema.get("properties", {}):
                continue
            result = await client.call_tool(tool.name, arguments_for(tool, seed, now))
            seen.result(f"asked {tool.name}", result)
    for number, params in enumerate(asked):
        seen.question(f"question {number}", params)
    return len(asked)


async def test_n3_no_surface_passes_posthogs_text_raw(
    make_sandbox: Callable[..., Any], mode: str, tmp_path: Path
) -> None:
    sandbox = make_sandbox(generation=3, exports=EXPORTS, hostile=True, throttle=False)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    seed = seed_values(control)
    seen = Surfaces()
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, include_deprecated=True)
    async with running_app(settings) as app:
        async with connect(app, mode) as client:
            called = await sweep(client, seen, control, seed)
            await errors_quoting_posthog(client, seen, control, seed)
            await prompts_and_resources(client, seen, seed)
            await resource_error(client, seen, control, seed)
            await confirmed_write(client, seen, seed)
        asked = await questions(app, mode, seen, control, seed)
    control.close()

    assert called == {t.name for t in app.definitions}, "every listed tool is called"
    assert asked >= 5, f"only {asked} questions were asked"
    # The hostile text reached the surfaces (otherwise this test proves nothing): the seed's hostile exports
    # are listed, and injected instructions arrive through names, errors and log lines.
    listed = json.dumps([s for surface, said in seen.said.items() if surface.startswith("tool ") for s in said])
    for hostile in seed["oracle"]["hostile"]:
        assert hostile["export"] in listed, f"hostile export {hostile['export']} never reached a result"
    for surface in (
        "tool batch-export-list",
        "tool batch-export-health",
        "tool batch-export-run-get",
        "tool batch-export-logs",
        "error ",
    ):
        assert seen.mentions_injection(surface), f"no injected text reached {surface}"
    assert seen.mentions_injection("question"), "no question quoted the hostile target"
    assert len(seen.marker_ids) == len(set(seen.marker_ids)), "a marker id was used twice"
    assert not seen.problems, f"{len(seen.problems)} raw strings:\n" + "\n".join(seen.problems[:15])


async def test_a_person_confirms_a_delete_by_the_name_as_it_was_shown(
    make_sandbox: Callable[..., Any], mode: str, tmp_path: Path
) -> None:
    """A name with hidden characters is shown cleaned, and typing what was shown confirms the delete."""
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    export = control.export_id("Paused events to Postgres")
    hidden = "Paused\u200b events\u202e to\U000e0041 Postgres\x1b[0m"
    assert control.api("PATCH", f"1/batch_exports/{export}/", json={"name": hidden}).status_code == 200
    asked: list[str] = []

    async def type_what_was_shown(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        shown = re.search(r"Type the export's name \((.*)\) to confirm", params.message)
        assert shown, params.message
        return types.ElicitResult(action="accept", content={"name": shown.group(1)})

    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_app(settings) as app, connect(app, mode, elicitation_callback=type_what_was_shown) as client:
        result = await client.call_tool("batch-export-delete", {"project_id": 1, "batch_export_id": export})
    assert not result.is_error and (result.structured_content or {})["status"] == "executed", text(result)
    assert asked and "(Paused events to Postgres)" in asked[0]
    assert control.api("GET", f"1/batch_exports/{export}/").status_code == 404
    control.close()
