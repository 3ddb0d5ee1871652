"""The whole catalog, in the order tools are listed."""

from __future__ import annotations

from tools import backfills, destination_tests, exports, logs, runs
from tools.declaration import ToolSpec

CATALOG: tuple[ToolSpec, ...] = (
    *exports.TOOLS,
    *logs.TOOLS,
    *runs.TOOLS,
    *backfills.TOOLS,
    *destination_tests.TOOLS,
)
BY_NAME: dict[str, ToolSpec] = {spec.name: spec for spec in CATALOG}
