"""An OpenAPI 3.1 description of the batch-export endpoints our default tools cover.

Written from shared/reference/posthog-batch-exports-api.md (sections 1, 5-8, 10, 13), in the
style of PostHog's generated (drf-spectacular) schema: one operation per route, operationIds
like `batch_exports_runs_retry_create`, components referenced with `$ref`, enum values listed in
descriptions, parameter descriptions as DRF writes them. It is what `FastMCP.from_openapi` is fed
in the context-cost benchmark.

It is deliberately fair to the alternative: custom actions (pause, retry, cancel, ...) declare
their real small bodies rather than the whole BatchExport that drf-spectacular would put there,
and `timezone` is a string rather than PostHog's ~600-value TimezoneEnum. A generated PostHog
schema would be larger, so the ratio we report is a lower bound.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def enum(values: list[str], what: str) -> dict[str, Any]:
    lines = "\n".join(f"* `{v}` - {v}" for v in values)
    return {"type": "string", "enum": values, "description": f"{what}\n\n{lines}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


DATETIME = {"type": "string", "format": "date-time"}
UUID = {"type": "string", "format": "uuid"}

MODELS = ["events", "persons", "sessions", "hogql"]
INTERVALS = ["hour", "day", "week", "every 5 minutes", "every 15 minutes"]
DESTINATION_TYPES = [
    "AwsS3",
    "S3Compatible",
    "Snowflake",
    "Postgres",
    "Redshift",
    "BigQuery",
    "Databricks",
    "AzureBlob",
    "Workflows",
    "HTTP",
    "NoOp",
    "FileDownload",
]
RUN_STATUSES = [
    "Cancelled",
    "Completed",
    "ContinuedAsNew",
    "Failed",
    "FailedRetryable",
    "FailedBilling",
    "Terminated",
    "TimedOut",
    "Running",
    "Starting",
]
BACKFILL_STATUSES = [s for s in RUN_STATUSES if s != "FailedBilling"]

SCHEMAS: dict[str, Any] = {
    "ModelEnum": enum(MODELS, "Which model this BatchExport is exporting."),
    "IntervalEnum": enum(INTERVALS, "The interval at which to export data."),
    "DestinationTypeEnum": enum(DESTINATION_TYPES, "A choice of supported BatchExportDestination types."),
    "RunStatusEnum": enum(RUN_STATUSES, "The status of this run."),
    "BackfillStatusEnum": enum(BACKFILL_STATUSES, "The status of this backfill."),
    "IncrementalModeEnum": enum(["APPEND", "MERGE"], "How rows are written to the destination."),
    "LogLevelEnum": enum(["DEBUG", "LOG", "INFO", "WARNING", "ERROR"], "Log level."),
    "BatchExportDestination": {
        "type": "object",
        "description": "Serializer for an BatchExportDestination model.",
        "properties": {
            "type": {
                **ref("DestinationTypeEnum"),
                "description": "A choice of supported BatchExportDestination types.",
            },
            "config": {
                "type": "object",
                "additionalProperties": True,
                "description": "A JSON field to store all configuration parameters required to access a "
                "BatchExportDestination. Secret fields (passwords, keys, tokens) are write-only and never returned.",
            },
            "integration": nullable({"type": "integer", "description": "The integration holding credentials."}),
            "integration_id": nullable(
                {"type": "integer", "writeOnly": True, "description": "Alias of integration, write-only."}
            ),
        },
        "required": ["type"],
    },
    "BatchExportSchema": {
        "type": "object",
        "description": "The compiled export schema of a custom HogQL query.",
        "properties": {
            "fields": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"expression": {"type": "string"}, "alias": {"type": "string"}},
                    "required": ["expression", "alias"],
                },
            },
            "values": {"type": "object", "additionalProperties": True},
            "hogql_query": {"type": "string"},
        },
    },
    "BatchExportRun": {
        "type": "object",
        "description": "Serializer for a BatchExportRun model.",
        "properties": {
            "id": {**UUID, "readOnly": True},
            "status": {**ref("RunStatusEnum"), "description": "The status of this run."},
            "records_completed": nullable(
                {"type": "integer", "description": "The number of records that have been exported."}
            ),
            "records_failed": nullable(
                {"type": "integer", "description": "The number of records that failed downstream processing."}
            ),
            "latest_error": nullable(
                {"type": "string", "description": "The latest error that occurred during this run."}
            ),
            "data_interval_start": nullable({**DATETIME, "description": "The start of the data interval."}),
            "data_interval_end": {**DATETIME, "description": "The end of the data interval."},
            "cursor": nullable({"type": "string", "description": "An opaque cursor that may be used to resume."}),
            "created_at": {
                **DATETIME,
                "readOnly": True,
                "description": "The timestamp at which this BatchExportRun was created.",
            },
            "finished_at": nullable(
                {**DATETIME, "description": "The timestamp at which this BatchExportRun finished, successfully or not."}
            ),
            "last_updated_at": {
                **DATETIME,
                "readOnly": True,
                "description": "The timestamp at which this BatchExportRun was last updated.",
            },
            "records_total_count": nullable(
                {
                    "type": "integer",
                    "description": "The total count of records that should be exported in this BatchExportRun.",
                }
            ),
            "bytes_exported": nullable(
                {
                    "type": "integer",
                    "description": "The number of bytes that have been exported in this BatchExportRun.",
                }
            ),
            "batch_export": {**UUID, "readOnly": True, "description": "The BatchExport this run belongs to."},
            "batch_export_on_demand": nullable({**UUID, "description": "The on-demand export this run belongs to."}),
            "backfill": nullable({**UUID, "description": "The backfill this run belongs to."}),
        },
        "required": ["id", "status", "data_interval_end", "created_at", "last_updated_at", "batch_export"],
    },
    "BackfillProgress": {
        "type": "object",
        "properties": {
            "total_runs": nullable({"type": "integer"}),
            "finished_runs": nullable({"type": "integer"}),
            "progress": nullable({"type": "number", "format": "double"}),
        },
    },
    "BatchExportBackfill": {
        "type": "object",
        "description": "Serializer for a BatchExportBackfill model.",
        "properties": {
            "id": {**UUID, "readOnly": True},
            "progress": nullable({**ref("BackfillProgress"), "readOnly": True}),
            "start_at": nullable({**DATETIME, "description": "The start of the data interval."}),
            "end_at": nullable({**DATETIME, "description": "The end of the data interval."}),
            "status": {**ref("BackfillStatusEnum"), "description": "The status of this backfill."},
            "created_at": {
                **DATETIME,
                "readOnly": True,
                "description": "The timestamp at which this BatchExportBackfill was created.",
            },
            "finished_at": nullable(
                {
                    **DATETIME,
                    "description": "The timestamp at which this BatchExportBackfill finished, successfully or not.",
                }
            ),
            "last_updated_at": {
                **DATETIME,
                "readOnly": True,
                "description": "The timestamp at which this BatchExportBackfill was last updated.",
            },
            "total_records_count": nullable(
                {"type": "integer", "description": "The total number of records to export."}
            ),
            "adjusted_start_at": nullable(
                {**DATETIME, "description": "The actual start time after adjustment for earliest available data."}
            ),
            "team": {"type": "integer", "description": "The team this belongs to."},
            "batch_export": {**UUID, "description": "The BatchExport this backfill belongs to."},
        },
        "required": ["id", "status", "created_at", "last_updated_at", "team", "batch_export"],
    },
    "BatchExport": {
        "type": "object",
        "description": "Serializer for a BatchExport model.",
        "properties": {
            "id": {**UUID, "readOnly": True},
            "team_id": {"type": "integer", "readOnly": True, "description": "The team this belongs to."},
            "name": {"type": "string", "description": "A human-readable name for this BatchExport."},
            "model": nullable({**ref("ModelEnum"), "description": "Which model this BatchExport is exporting."}),
            "destination": ref("BatchExportDestination"),
            "interval": ref("IntervalEnum"),
            "paused": {"type": "boolean", "description": "Whether this BatchExport is paused or not."},
            "created_at": {
                **DATETIME,
                "readOnly": True,
                "description": "The timestamp at which this BatchExport was created.",
            },
            "last_updated_at": {
                **DATETIME,
                "readOnly": True,
                "description": "The timestamp at which this BatchExport was last updated.",
            },
            "last_paused_at": nullable(
                {**DATETIME, "description": "The timestamp at which this BatchExport was last paused."}
            ),
            "start_at": nullable(
                {**DATETIME, "description": "Time before which any Batch Export runs won't be triggered."}
            ),
            "end_at": nullable(
                {**DATETIME, "description": "Time after which any Batch Export runs won't be triggered."}
            ),
            "latest_runs": {"type": "array", "items": ref("BatchExportRun"), "readOnly": True},
            "hogql_query": nullable(
                {"type": "string", "description": "A HogQL query selecting what to export (model hogql)."}
            ),
            "schema": nullable({**ref("BatchExportSchema"), "readOnly": True}),
            "filters": nullable(
                {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": True},
                    "description": "Property filters, each with a type of event, person or hogql.",
                }
            ),
            "timezone": nullable(
                {
                    "type": "string",
                    "description": "IANA timezone name used for daily and weekly schedules (default UTC).",
                }
            ),
            "offset_day": nullable(
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 6,
                    "description": "Weekly exports: day of the week to run on, 0 = Sunday.",
                }
            ),
            "offset_hour": nullable(
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 23,
                    "description": "Daily and weekly exports: hour of the day to run at.",
                }
            ),
            "hogql_modifiers": nullable(
                {"type": "object", "additionalProperties": True, "description": "HogQL modifiers (model hogql)."}
            ),
            "primary_key": nullable(
                {"type": "array", "items": {"type": "string"}, "description": "Primary key columns (model hogql)."}
            ),
            "version_key": nullable(
                {"type": "array", "items": {"type": "string"}, "description": "Version columns (model hogql)."}
            ),
            "incremental_mode": ref("IncrementalModeEnum"),
        },
        "required": [
            "id",
            "team_id",
            "name",
            "destination",
            "interval",
            "created_at",
            "last_updated_at",
            "latest_runs",
            "schema",
        ],
    },
    "BatchExportRequest": {
        "type": "object",
        "description": "Serializer for a BatchExport model.",
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "A human-readable name for this BatchExport."},
            "model": nullable({**ref("ModelEnum"), "description": "Which model this BatchExport is exporting."}),
            "destination": ref("BatchExportDestination"),
            "interval": ref("IntervalEnum"),
            "paused": {"type": "boolean", "description": "Whether this BatchExport is paused or not."},
            "last_paused_at": nullable(
                {**DATETIME, "description": "The timestamp at which this BatchExport was last paused."}
            ),
            "start_at": nullable(
                {**DATETIME, "description": "Time before which any Batch Export runs won't be triggered."}
            ),
            "end_at": nullable(
                {**DATETIME, "description": "Time after which any Batch Export runs won't be triggered."}
            ),
            "hogql_query": {
                "type": "string",
                "writeOnly": True,
                "description": "A HogQL query selecting what to export.",
            },
            "filters": nullable(
                {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": True},
                    "description": "Property filters, each with a type of event, person or hogql.",
                }
            ),
            "timezone": nullable(
                {
                    "type": "string",
                    "description": "IANA timezone name used for daily and weekly schedules (default UTC).",
                }
            ),
            "offset_day": nullable(
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 6,
                    "description": "Weekly exports: day of the week to run on, 0 = Sunday.",
                }
            ),
            "offset_hour": nullable(
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 23,
                    "description": "Daily and weekly exports: hour of the day to run at.",
                }
            ),
        },
        "required": ["name", "destination", "interval"],
    },
    "PaginatedBatchExportList": {
        "type": "object",
        "required": ["count", "results"],
        "properties": {
            "count": {"type": "integer", "example": 123},
            "next": nullable(
                {"type": "string", "format": "uri", "example": "http://api.example.org/accounts/?offset=400&limit=100"}
            ),
            "previous": nullable(
                {"type": "string", "format": "uri", "example": "http://api.example.org/accounts/?offset=200&limit=100"}
            ),
            "results": {"type": "array", "items": ref("BatchExport")},
        },
    },
    "PaginatedBatchExportRunList": {
        "type": "object",
        "required": ["results"],
        "properties": {
            "next": nullable(
                {"type": "string", "format": "uri", "example": "http://api.example.org/accounts/?cursor=cD00ODY%3D"}
            ),
            "previous": nullable(
                {"type": "string", "format": "uri", "example": "http://api.example.org/accounts/?cursor=cj0xJnA9NDg3"}
            ),
            "results": {"type": "array", "items": ref("BatchExportRun")},
        },
    },
    "PaginatedBatchExportBackfillList": {
        "type": "object",
        "required": ["results"],
        "properties": {
            "next": nullable(
                {"type": "string", "format": "uri", "example": "http://api.example.org/accounts/?cursor=cD00ODY%3D"}
            ),
            "previous": nullable(
                {"type": "string", "format": "uri", "example": "http://api.example.org/accounts/?cursor=cj0xJnA9NDg3"}
            ),
            "results": {"type": "array", "items": ref("BatchExportBackfill")},
        },
    },
    "LogEntry": {
        "type": "object",
        "properties": {
            "log_source_id": {"type": "string"},
            "instance_id": {"type": "string"},
            "timestamp": DATETIME,
            "level": {"type": "string"},
            "message": {"type": "string"},
        },
        "required": ["log_source_id", "instance_id", "timestamp", "level", "message"],
    },
    "PaginatedLogEntryList": {
        "type": "object",
        "required": ["count", "results"],
        "properties": {
            "count": {"type": "integer", "example": 123},
            "next": nullable({"type": "string", "format": "uri"}),
            "previous": nullable({"type": "string", "format": "uri"}),
            "results": {"type": "array", "items": ref("LogEntry")},
        },
    },
    "BackfillRequest": {
        "type": "object",
        "properties": {
            "start_at": nullable(
                {
                    "type": "string",
                    "description": "The start of the range to backfill: a date for daily and weekly exports, else an ISO 8601 datetime with offset.",
                }
            ),
            "end_at": nullable(
                {"type": "string", "description": "The end of the range to backfill (exclusive, not in the future)."}
            ),
        },
        "required": ["start_at", "end_at"],
    },
    "BackfillStarted": {
        "type": "object",
        "properties": {"backfill_id": {"type": "string", "description": "Id of the backfill that was started."}},
        "required": ["backfill_id"],
    },
    "Paused": {"type": "object", "properties": {"paused": {"type": "boolean"}}, "required": ["paused"]},
    "UnpauseRequest": {
        "type": "object",
        "properties": {"backfill": {"type": "boolean", "description": "Also backfill the time the export was paused."}},
    },
    "Cancelled": {"type": "object", "properties": {"cancelled": {"type": "boolean"}}, "required": ["cancelled"]},
    "TestStepResult": {
        "type": "object",
        "properties": {
            "status": enum(["Passed", "Failed", "Skipped"], "Outcome of the test step."),
            "message": nullable({"type": "string"}),
        },
        "required": ["status"],
    },
    "DestinationTestStep": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "result": nullable(ref("TestStepResult")),
        },
        "required": ["name", "description"],
    },
    "DestinationTest": {
        "type": "object",
        "properties": {"steps": {"type": "array", "items": ref("DestinationTestStep")}},
        "required": ["steps"],
    },
    "RunTestStepRequest": {
        "allOf": [
            ref("BatchExportRequest"),
            {
                "type": "object",
                "properties": {
                    "step": {"type": "integer", "minimum": 0, "description": "Index of the test step to run."}
                },
                "required": ["step"],
            },
        ]
    },
}

PROJECT_ID = {
    "in": "path",
    "name": "project_id",
    "required": True,
    "schema": {"type": "string"},
    "description": "Project ID of the project you're trying to access. To find the ID of the project, make a call to /api/projects/.",
}


def path_id(name: str, what: str) -> dict[str, Any]:
    return {
        "in": "path",
        "name": name,
        "required": True,
        "schema": UUID,
        "description": f"A UUID string identifying this {what}.",
    }


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"in": "query", "name": name, "required": False, "schema": schema, "description": description}


EXPORT_ID = path_id("id", "batch export")
NESTED_EXPORT_ID = path_id("batch_export_id", "batch export")
CURSOR = query("cursor", {"type": "string"}, "The pagination cursor value.")


def ok(schema_name: str, status: str = "200") -> dict[str, Any]:
    return {status: {"content": {JSON: {"schema": ref(schema_name)}}, "description": ""}}


def body(schema_name: str) -> dict[str, Any]:
    return {"content": {JSON: {"schema": ref(schema_name)}}, "required": True}


def operation(
    operation_id: str,
    summary: str,
    params: list[dict[str, Any]],
    responses: dict[str, Any],
    *,
    scope: str,
    request: str | None = None,
    tags: tuple[str, ...] = ("batch_exports",),
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": operation_id,
        "description": summary,
        "parameters": [PROJECT_ID, *params],
        "tags": list(tags),
        "security": [{"PersonalAPIKeyAuth": [scope]}],
        "responses": responses,
    }
    if request:
        op["requestBody"] = body(request)
    return op


READ, WRITE = "batch_export:read", "batch_export:write"
P = "/api/projects/{project_id}/batch_exports"

PATHS: dict[str, Any] = {
    f"{P}/": {
        "get": operation(
            "batch_exports_list",
            "List the project's batch exports, newest first, each with its 10 latest runs.",
            [
                query("limit", {"type": "integer"}, "Number of results to return per page."),
                query("offset", {"type": "integer"}, "The initial index from which to return the results."),
            ],
            ok("PaginatedBatchExportList"),
            scope=READ,
        ),
        "post": operation(
            "batch_exports_create",
            "Create a scheduled batch export to a destination.",
            [],
            ok("BatchExport", "201"),
            scope=WRITE,
            request="BatchExportRequest",
        ),
    },
    f"{P}/{{id}}/": {
        "get": operation(
            "batch_exports_retrieve",
            "Retrieve one batch export: destination (secrets omitted), schedule, state and latest runs.",
            [EXPORT_ID],
            ok("BatchExport"),
            scope=READ,
        ),
        "patch": operation(
            "batch_exports_partial_update",
            "Update fields of a batch export; the destination config is merged into the stored one.",
            [EXPORT_ID],
            ok("BatchExport"),
            scope=WRITE,
            request="BatchExportRequest",
        ),
        "delete": operation(
            "batch_exports_destroy",
            "Delete a batch export; its running backfills and runs are cancelled.",
            [EXPORT_ID],
            {"204": {"description": "No response body"}},
            scope=WRITE,
        ),
    },
    f"{P}/{{id}}/pause/": {
        "post": operation(
            "batch_exports_pause_create",
            "Pause a BatchExport.",
            [EXPORT_ID],
            ok("Paused"),
            scope=WRITE,
        ),
    },
    f"{P}/{{id}}/unpause/": {
        "post": operation(
            "batch_exports_unpause_create",
            "Unpause a BatchExport, optionally backfilling the paused period.",
            [EXPORT_ID],
            ok("Paused"),
            scope=WRITE,
            request="UnpauseRequest",
        ),
    },
    f"{P}/{{id}}/logs/": {
        "get": operation(
            "batch_exports_logs_list",
            "Log entries of a batch export, newest first.",
            [
                EXPORT_ID,
                query("after", DATETIME, "Only return entries after this time."),
                query("before", DATETIME, "Only return entries before this time."),
                query("instance_id", {"type": "string"}, "Only return entries of this run attempt."),
                query("level", {"type": "string"}, "Comma-separated log levels (DEBUG, LOG, INFO, WARNING, ERROR)."),
                query("limit", {"type": "integer"}, "Maximum number of entries to return."),
                query("search", {"type": "string"}, "Only return entries whose message contains this text."),
            ],
            ok("PaginatedLogEntryList"),
            scope=READ,
        ),
    },
    f"{P}/{{id}}/run_test_step/": {
        "post": operation(
            "batch_exports_run_test_step_create",
            "Run one connection test step against an existing export's destination.",
            [EXPORT_ID],
            ok("DestinationTestStep"),
            scope=WRITE,
            request="RunTestStepRequest",
        ),
    },
    f"{P}/run_test_step_new/": {
        "post": operation(
            "batch_exports_run_test_step_new_create",
            "Run one connection test step for a destination before creating the export.",
            [],
            ok("DestinationTestStep"),
            scope=WRITE,
            request="RunTestStepRequest",
        ),
    },
    f"{P}/test/": {
        "get": operation(
            "batch_exports_test_retrieve",
            "List the connection test steps for a destination type.",
            [{**query("destination", ref("DestinationTypeEnum"), "Destination type."), "required": True}],
            ok("DestinationTest"),
            scope=READ,
        ),
    },
    f"{P}/{{batch_export_id}}/runs/": {
        "get": operation(
            "batch_exports_runs_list",
            "List a batch export's runs; by default only runs created in the last 7 days.",
            [
                NESTED_EXPORT_ID,
                CURSOR,
                query("ordering", {"type": "string"}, "Which field to use when ordering the results."),
                query(
                    "status", {"type": "array", "items": ref("RunStatusEnum")}, "Only return runs in these statuses."
                ),
                query(
                    "after",
                    {"type": "string"},
                    "Only return runs created after this time (ISO 8601 or relative, e.g. -7d).",
                ),
                query("before", {"type": "string"}, "Only return runs created before this time."),
                query("start", {"type": "string"}, "Only return runs whose data interval starts after this time."),
                query("end", {"type": "string"}, "Only return runs whose data interval ends before this time."),
            ],
            ok("PaginatedBatchExportRunList"),
            scope=READ,
            tags=("batch_exports", "runs"),
        ),
    },
    f"{P}/{{batch_export_id}}/runs/{{id}}/": {
        "get": operation(
            "batch_exports_runs_retrieve",
            "Retrieve one run of a batch export.",
            [NESTED_EXPORT_ID, path_id("id", "batch export run")],
            ok("BatchExportRun"),
            scope=READ,
            tags=("batch_exports", "runs"),
        ),
    },
    f"{P}/{{batch_export_id}}/runs/{{id}}/retry/": {
        "post": operation(
            "batch_exports_runs_retry_create",
            "Retry a batch export run: start a backfill over the run's data interval.",
            [NESTED_EXPORT_ID, path_id("id", "batch export run")],
            ok("BackfillStarted", "201"),
            scope=WRITE,
            tags=("batch_exports", "runs"),
        ),
    },
    f"{P}/{{batch_export_id}}/runs/{{id}}/cancel/": {
        "post": operation(
            "batch_exports_runs_cancel_create",
            "Cancel a Starting or Running batch export run.",
            [NESTED_EXPORT_ID, path_id("id", "batch export run")],
            ok("Cancelled"),
            scope=WRITE,
            tags=("batch_exports", "runs"),
        ),
    },
    f"{P}/{{batch_export_id}}/backfills/": {
        "get": operation(
            "batch_exports_backfills_list",
            "List a batch export's backfills, newest first.",
            [
                NESTED_EXPORT_ID,
                CURSOR,
                query("ordering", {"type": "string"}, "Which field to use when ordering the results."),
            ],
            ok("PaginatedBatchExportBackfillList"),
            scope=READ,
            tags=("batch_exports", "backfills"),
        ),
        "post": operation(
            "batch_exports_backfills_create",
            "Create a new backfill for a BatchExport.",
            [NESTED_EXPORT_ID],
            ok("BackfillStarted", "201"),
            scope=WRITE,
            request="BackfillRequest",
            tags=("batch_exports", "backfills"),
        ),
    },
    f"{P}/{{batch_export_id}}/backfills/{{id}}/": {
        "get": operation(
            "batch_exports_backfills_retrieve",
            "Retrieve one backfill of a batch export.",
            [NESTED_EXPORT_ID, path_id("id", "batch export backfill")],
            ok("BatchExportBackfill"),
            scope=READ,
            tags=("batch_exports", "backfills"),
        ),
    },
    f"{P}/{{batch_export_id}}/backfills/{{id}}/cancel/": {
        "post": operation(
            "batch_exports_backfills_cancel_create",
            "Cancel a Starting or Running backfill and its unfinished runs.",
            [NESTED_EXPORT_ID, path_id("id", "batch export backfill")],
            ok("Cancelled"),
            scope=WRITE,
            tags=("batch_exports", "backfills"),
        ),
    },
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "PostHog batch exports",
        "version": "1.0.0",
        "description": "Batch exports of a PostHog project.",
    },
    "servers": [{"url": "https://us.posthog.com"}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"PersonalAPIKeyAuth": {"type": "http", "scheme": "bearer"}},
    },
}


def operation_count() -> int:
    return sum(len(methods) for methods in PATHS.values())
