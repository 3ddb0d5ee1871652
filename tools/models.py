"""PostHog's batch-export objects as the catalog sees them.

Input enums are strict (a model gets a clear error before anything is sent); output
models are tolerant: they name the fields worth knowing, accept any others, and use
plain strings for PostHog's enums so that a newer PostHog with new values still
validates. Field lists follow the reference (shared/reference, sections 7 and 8).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Model = Literal["events", "persons", "sessions", "hogql"]
Interval = Literal["hour", "day", "week", "every 5 minutes", "every 15 minutes"]
DestinationType = Literal[
    "AwsS3",
    "S3Compatible",
    "S3",
    "Snowflake",
    "Postgres",
    "Redshift",
    "BigQuery",
    "Databricks",
    "AzureBlob",
    "Workflows",
    "HTTP",
    "NoOp",
]
RunStatus = Literal[
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
LogLevel = Literal["DEBUG", "LOG", "INFO", "WARNING", "ERROR"]
RunOrdering = Literal["created_at", "-created_at", "data_interval_start", "-data_interval_start"]
BackfillOrdering = Literal["created_at", "-created_at", "start_at", "-start_at"]

# Required config keys are those required in every PostHog generation; allowed keys are
# the union over generations, so a valid request for any generation passes here and the
# server reports generation-specific rules itself.
_COMMON_CONFIG_KEYS = ("include_events", "exclude_events")
_S3_FAMILY = ("bucket_name", "region", "prefix", "compression", "file_format", "max_file_size_mb")
DESTINATION_CONFIG: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required, optional)
    "AwsS3": (
        ("bucket_name", "region", "prefix"),
        _S3_FAMILY[3:] + ("legacy_parquet_extension", "encryption", "kms_key_id"),
    ),
    "S3Compatible": (
        ("bucket_name", "region", "prefix"),
        _S3_FAMILY[3:] + ("legacy_parquet_extension", "use_virtual_style_addressing"),
    ),
    "S3": (
        ("bucket_name", "region", "prefix"),
        _S3_FAMILY[3:]
        + ("aws_access_key_id", "aws_secret_access_key", "encryption", "kms_key_id", "endpoint_url")
        + ("use_virtual_style_addressing",),
    ),
    "Snowflake": (
        ("database", "warehouse", "schema"),
        ("account", "user", "table_name", "authentication_type", "password", "private_key")
        + ("private_key_passphrase", "role"),
    ),
    "Postgres": (("database",), ("schema", "table_name", "user", "host", "port", "password", "has_self_signed_cert")),
    "Redshift": (
        ("database",),
        ("user", "password", "host", "schema", "table_name", "port", "properties_data_type", "mode", "copy_inputs"),
    ),
    "BigQuery": (
        ("dataset_id",),
        ("table_id", "project_id", "private_key", "private_key_id", "token_uri", "client_email", "use_json_type"),
    ),
    "Databricks": (
        ("http_path", "catalog", "schema", "table_name"),
        ("use_variant_type", "use_automatic_schema_evolution"),
    ),
    "AzureBlob": (
        ("container_name",),
        ("prefix", "compression", "file_format", "max_file_size_mb", "legacy_parquet_extension"),
    ),
    "Workflows": (("hog_function_id",), ()),
    "HTTP": (("url", "token"), ()),
    "NoOp": ((), ("arg",)),
}

FILE_FORMAT_COMPRESSIONS: dict[str, tuple[str, ...]] = {
    "Parquet": ("zstd", "lz4", "snappy", "gzip", "brotli"),
    "JSONLines": ("gzip", "brotli"),
}
_FILE_DESTINATIONS = ("AwsS3", "S3Compatible", "S3", "AzureBlob")

# Section 8.4: keys PostHog never returns. Removal is recursive, so the union is applied
# to every object under a destination config, whatever its type.
SECRET_CONFIG_KEYS: frozenset[str] = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "user",
        "password",
        "private_key",
        "private_key_passphrase",
        "private_key_id",
        "client_email",
        "token_uri",
        "token",
    }
)


def destination_config_problem(dest_type: str, config: dict[str, Any], *, partial: bool) -> str | None:
    """Why this config would be refused, in one sentence naming the fix; None if it is fine.

    `partial` is for PATCH, where PostHog merges into the stored config and does not
    require keys again.
    """
    required, optional = DESTINATION_CONFIG[dest_type]
    allowed = set(required) | set(optional) | set(_COMMON_CONFIG_KEYS)
    unknown = sorted(set(config) - allowed)
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        return (
            f"destination.config has unknown key(s) {names} for type {dest_type}; "
            f"allowed keys: {', '.join(sorted(allowed))}."
        )
    if not partial:
        missing = [k for k in required if k not in config]
        if missing:
            return (
                f"destination.config is missing required key(s) {', '.join(missing)} for type {dest_type}; "
                f"add them (allowed keys: {', '.join(sorted(allowed))})."
            )
    if dest_type in _FILE_DESTINATIONS:
        fmt = config.get("file_format")
        if fmt is not None and fmt not in FILE_FORMAT_COMPRESSIONS:
            return f"destination.config.file_format {fmt!r} is not supported; use Parquet or JSONLines."
        comp = config.get("compression")
        if comp is not None:
            allowed_comp = FILE_FORMAT_COMPRESSIONS[fmt or "JSONLines"]
            if comp not in allowed_comp:
                return (
                    f"destination.config.compression {comp!r} does not suit file format {fmt or 'JSONLines'}; "
                    f"use one of {', '.join(allowed_comp)}."
                )
    return None


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow")


class Destination(_Tolerant):
    type: str


class Run(_Tolerant):
    id: str
    status: str
    data_interval_start: str | None = None
    data_interval_end: str | None = None
    latest_error: str | None = None


class BatchExport(_Tolerant):
    id: str
    name: str
    interval: str
    paused: bool
    destination: Destination


class Backfill(_Tolerant):
    id: str
    status: str
    start_at: str | None = None
    end_at: str | None = None


class LogEntry(_Tolerant):
    timestamp: str
    level: str
    message: str


class ExportPage(_Tolerant):
    results: list[BatchExport]
    next: str | None = None


class RunPage(_Tolerant):
    results: list[Run]
    next: str | None = None


class BackfillPage(_Tolerant):
    results: list[Backfill]
    next: str | None = None


class LogPage(_Tolerant):
    results: list[LogEntry]


class BackfillStarted(_Tolerant):
    backfill_id: str


class PausedState(_Tolerant):
    paused: bool


class Cancelled(_Tolerant):
    cancelled: bool


class Deleted(BaseModel):
    deleted: bool
    id: str


class TestSteps(_Tolerant):
    steps: list[dict[str, Any]]


class TestStepResult(_Tolerant):
    name: str | None = None
    result: dict[str, Any] | None = None


# --- input building blocks -------------------------------------------------------------


class Params(BaseModel):
    """Every tool's arguments: strict, so a typo is an error rather than a silent no-op."""

    model_config = ConfigDict(extra="forbid")

    project_id: int = Field(ge=1, description="PostHog project id.")


class ExportParams(Params):
    batch_export_id: UUID = Field(description="Batch export id (UUID).")


class RunParams(Params):
    batch_export_id: UUID = Field(description="Batch export id (UUID).")
    run_id: UUID = Field(description="Run id (UUID).")


class BackfillParams(Params):
    batch_export_id: UUID = Field(description="Batch export id (UUID).")
    backfill_id: UUID = Field(description="Backfill id (UUID).")
