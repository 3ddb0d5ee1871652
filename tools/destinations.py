"""Destinations: their types, the config keys each accepts, which keys are secret, and the input.

Required config keys are those required in every PostHog generation; allowed keys are the
union over generations, so a valid request for any generation passes here and the server
reports generation-specific rules itself (docs/posthog-api.md, section "Exports and destinations").
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field

from tools.params import Arguments, JsonObject

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

# Keys PostHog never returns (docs/posthog-api.md, section "Exports and destinations"). Removal is recursive, so the union is applied
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
        # integrations' own secrets (docs/posthog-api.md, "Integrations"): never shown, never echoed
        "client_id",
        "client_secret",
        "connection_string",
    }
)


# Integration rules (docs/posthog-api.md, section "Exports and destinations"). Newer PostHog keeps a
# destination's credentials in an integration and refuses a create without one for these types; the
# first four have no other way to hold credentials in any generation that knows them.
INTEGRATION_ALWAYS = ("AwsS3", "S3Compatible", "Databricks", "AzureBlob")
INTEGRATION_ON_NEWER = ("Snowflake", "Postgres", "Redshift", "BigQuery")  # older PostHog took inline credentials
# Config keys newer PostHog keeps in a destination's integration and no longer takes in the export's config
# (docs/posthog-api.md, "Exports and destinations", "Integrations"): sent with an update, they are refused
# ("Configuration has unknown field/s"). The credential is changed where PostHog keeps it, in an integration.
INTEGRATION_HELD_KEYS: dict[str, frozenset[str]] = {
    "Snowflake": frozenset(
        {"account", "user", "authentication_type", "password", "private_key", "private_key_passphrase"}
    ),
}
# The kind of integration each destination type uses (docs/posthog-api.md, "Integrations").
INTEGRATION_KIND = {
    "AwsS3": "aws-s3",
    "S3Compatible": "s3-compatible",
    "Snowflake": "snowflake",
    "Postgres": "postgresql",
    "Redshift": "aws-redshift",
    "BigQuery": "google-cloud-service-account",
    "Databricks": "databricks",
    "AzureBlob": "azure-blob",
}
# On update these have no fallback to the stored integration: it must come with every destination change
# (Redshift refuses one that would drop it). The update tool always sends the stored one again.
INTEGRATION_ON_EVERY_UPDATE = ("BigQuery", "Databricks", "AzureBlob")
# Only these types have connection test steps (docs/posthog-api.md, section "Destination tests").
TESTABLE_TYPES = ("AwsS3", "S3Compatible", "BigQuery", "Snowflake", "Databricks", "AzureBlob")

# Config keys that say where a destination is. PostHog merges an export's stored credentials into the
# config a test step sends, so a test step that moves one of these carries those credentials to the new
# place (docs/posthog-api.md, "Destination tests").
TARGET_CONFIG_KEYS: frozenset[str] = frozenset(
    {"bucket_name", "region", "endpoint_url", "account", "host", "port", "url", "project_id", "http_path"}
    | {"container_name", "catalog"}
)


def moved_targets(stored: dict[str, Any], config: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The target keys `config` sets to another value than the stored destination has: {key: (old, new)}."""
    return {k: (stored.get(k), v) for k, v in config.items() if k in TARGET_CONFIG_KEYS and stored.get(k) != v}


_INTEGRATION_HOW = (
    "copy destination.integration from an existing {kind} export (batch-export-get), or create the integration "
    "in PostHog (Data pipelines, the destination's setup) and pass its id"
)


def missing_integration(dest_type: str) -> str:
    """Why a create without integration_id is refused, naming the fix."""
    return (
        f"destination.integration_id is required for {dest_type}: PostHog keeps {dest_type} credentials in an "
        f"integration and refuses a new export without one (Integration is required for {dest_type} batch exports); "
        + _INTEGRATION_HOW.format(kind=dest_type)
        + "."
    )


def untestable(dest_type: str | None) -> str:
    return (
        f"PostHog has no connection test steps for {dest_type} destinations; it has them only for "
        f"{', '.join(TESTABLE_TYPES)}."
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


def _required_keys_help() -> str:
    """Each type's required config keys, types that need the same ones named together."""
    by_keys: dict[tuple[str, ...], list[str]] = {}
    for dest_type, (required, _) in DESTINATION_CONFIG.items():
        if required:
            by_keys.setdefault(required, []).append(dest_type)
    groups = "; ".join(f"{'/'.join(types)}: {', '.join(keys)}" for keys, types in by_keys.items())
    return f"Required config keys: {groups}; a wrong key is answered with the allowed ones."


CONFIG_HELP = _required_keys_help()


class DestinationInput(Arguments):
    type: DestinationType = Field(description="S3: older PostHog only (else AwsS3).")
    config: JsonObject = Field(description="Settings; secrets are write-only.")
    integration_id: int | None = Field(
        None,
        ge=1,
        validation_alias=AliasChoices("integration_id", "integration"),
        description="Credentials: an integration id.",
    )


def check_destination(destination: DestinationInput | None, *, partial: bool) -> None:
    if destination is None:
        return
    problem = destination_config_problem(destination.type, destination.config, partial=partial)
    if problem:
        raise ValueError(problem)
