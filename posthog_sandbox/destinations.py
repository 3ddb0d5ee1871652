"""What each destination type accepts, per generation (docs/posthog-api.md, "Exports and destinations", "Destination tests"). Data only."""

from __future__ import annotations

from typing import Any

# Config field specs: name -> (python type name, required). Order matters for "missing required field".
Spec = dict[str, tuple[str, bool]]

_S3_COMMON: Spec = {
    "bucket_name": ("str", True),
    "region": ("str", True),
    "prefix": ("str", True),
    "compression": ("str", False),
    "file_format": ("str", False),
    "max_file_size_mb": ("int", False),
    "legacy_parquet_extension": ("bool", False),
}

GEN3_FIELDS: dict[str, Spec] = {
    "AwsS3": {**_S3_COMMON, "encryption": ("str", False), "kms_key_id": ("str", False)},
    "S3Compatible": {**_S3_COMMON, "use_virtual_style_addressing": ("bool", False)},
    "Snowflake": {
        "database": ("str", True),
        "warehouse": ("str", True),
        "schema": ("str", True),
        "table_name": ("str", False),
        "role": ("str", False),
    },
    "Postgres": {
        "database": ("str", True),
        "schema": ("str", False),
        "table_name": ("str", False),
        "user": ("str", False),
        "host": ("str", False),
        "port": ("int", False),
        "password": ("str", False),
        "has_self_signed_cert": ("bool", False),
    },
    "Redshift": {
        "database": ("str", True),
        "user": ("str", False),
        "password": ("str", False),
        "host": ("str", False),
        "schema": ("str", False),
        "table_name": ("str", False),
        "port": ("int", False),
        "properties_data_type": ("str", False),
        "mode": ("str", False),
        "copy_inputs": ("dict", False),
    },
    "BigQuery": {
        "dataset_id": ("str", True),
        "table_id": ("str", False),
        "project_id": ("str", False),
        "private_key": ("str", False),
        "private_key_id": ("str", False),
        "token_uri": ("str", False),
        "client_email": ("str", False),
        "use_json_type": ("bool", False),
    },
    "Databricks": {
        "http_path": ("str", True),
        "catalog": ("str", True),
        "schema": ("str", True),
        "table_name": ("str", True),
        "use_variant_type": ("bool", False),
        "use_automatic_schema_evolution": ("bool", False),
    },
    "AzureBlob": {
        "container_name": ("str", True),
        "prefix": ("str", False),
        "compression": ("str", False),
        "file_format": ("str", False),
        "max_file_size_mb": ("int", False),
        "legacy_parquet_extension": ("bool", False),
    },
    "Workflows": {"hog_function_id": ("str", True)},
    "HTTP": {"url": ("str", True), "token": ("str", True)},
    "NoOp": {"arg": ("str", False)},
}
# The legacy `S3` type is still a choice of the model and its workflow inputs are still declared, so its config
# is checked like any other before the view refuses the type itself (docs/posthog-api.md, "Exports and
# destinations").
GEN3_FIELDS["S3"] = {
    **_S3_COMMON,
    "aws_access_key_id": ("str", False),
    "aws_secret_access_key": ("str", False),
    "encryption": ("str", False),
    "kms_key_id": ("str", False),
    "endpoint_url": ("str", False),
    "use_virtual_style_addressing": ("bool", False),
}

GEN1_FIELDS: dict[str, Spec] = {
    "S3": {
        "bucket_name": ("str", True),
        "region": ("str", True),
        "prefix": ("str", True),
        "aws_access_key_id": ("str", False),
        "aws_secret_access_key": ("str", False),
        "compression": ("str", False),
        "encryption": ("str", False),
        "kms_key_id": ("str", False),
        "endpoint_url": ("str", False),
        "file_format": ("str", False),
        "max_file_size_mb": ("int", False),
        "use_virtual_style_addressing": ("bool", False),
    },
    "Snowflake": {
        "account": ("str", True),
        "user": ("str", True),
        "database": ("str", True),
        "warehouse": ("str", True),
        "schema": ("str", True),
        "table_name": ("str", False),
        "authentication_type": ("str", False),
        "password": ("str", False),
        "private_key": ("str", False),
        "private_key_passphrase": ("str", False),
        "role": ("str", False),
    },
    "Postgres": {
        "user": ("str", True),
        "password": ("str", True),
        "host": ("str", True),
        "database": ("str", True),
        "schema": ("str", False),
        "table_name": ("str", False),
        "port": ("int", False),
        "has_self_signed_cert": ("bool", False),
    },
    "Redshift": {
        "user": ("str", True),
        "password": ("str", True),
        "host": ("str", True),
        "database": ("str", True),
        "schema": ("str", False),
        "table_name": ("str", False),
        "port": ("int", False),
        "properties_data_type": ("str", False),
        "mode": ("str", False),
        "copy_inputs": ("dict", False),
    },
    "BigQuery": {
        "project_id": ("str", True),
        "dataset_id": ("str", True),
        "private_key": ("str", True),
        "private_key_id": ("str", True),
        "token_uri": ("str", True),
        "client_email": ("str", True),
        "table_id": ("str", False),
        "use_json_type": ("bool", False),
    },
    "Databricks": GEN3_FIELDS["Databricks"],
    "HTTP": {"url": ("str", True), "token": ("str", True)},
    "NoOp": {"arg": ("str", False)},
}

# Enum values of `destination.type` (the model's choices) per generation.
GEN3_TYPES = [
    "S3",
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
GEN1_TYPES = [
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
    "FileDownload",
]

# Keys of the shared base inputs: pass the unknown-field check on every type.
BASE_FIELDS: Spec = {
    "include_events": ("list", False),
    "exclude_events": ("list", False),
    "batch_export_id": ("str", False),
    "team_id": ("int", False),
    "interval": ("str", False),
    "timezone": ("str", False),
    "data_interval_end": ("str", False),
    "is_backfill": ("bool", False),
    "is_earliest_backfill": ("bool", False),
    "backfill_details": ("dict", False),
    "batch_export_model": ("dict", False),
    "batch_export_schema": ("dict", False),
    "integration_id": ("int", False),
}

SECRET_FIELDS: dict[str, set[str]] = {
    "S3": {"aws_access_key_id", "aws_secret_access_key"},
    "AwsS3": {"aws_access_key_id", "aws_secret_access_key"},
    "S3Compatible": {"aws_access_key_id", "aws_secret_access_key"},
    "Snowflake": {"user", "password", "private_key", "private_key_passphrase"},
    "Postgres": {"user", "password"},
    "Redshift": {"user", "password", "aws_access_key_id", "aws_secret_access_key"},
    "BigQuery": {"private_key", "private_key_id", "client_email", "token_uri"},
    "HTTP": {"token"},
}

# Gen-3: integration kind required per type (None = no integration). `create_only` types accept legacy
# inline credentials on exports that already exist.
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
INTEGRATION_CREATE_ONLY = {"Postgres", "Redshift"}
COPY_STICKY_MESSAGE = (
    "Cannot switch '{field}' from an integration to inline credentials. "
    "Send a different integration ID to swap, or omit the field to keep the current one."
)
INVALID_HOST_MESSAGE = "Invalid host. Enter a hostname or IP address without credentials, scheme, or path."
UNREACHABLE_HOST_MESSAGE = (
    "Could not reach this host. Check that the hostname is correct and reachable from the internet."
)
LEGACY_S3_MESSAGE = (
    "The 'S3' destination type is deprecated and can no longer be used. "
    "Use 'AwsS3' for AWS S3, or 'S3Compatible' for S3-compatible storage."
)
# Gen-3 config keys declared optional (`X | None`) in the workflow inputs: a `null` passes their type check.
# Every other declared str/int/bool key refuses `null` as a wrong type (docs/posthog-api.md, "Exports and
# destinations").
NULLABLE_FIELDS = {
    "compression",
    "max_file_size_mb",
    "encryption",
    "kms_key_id",
    "role",
    "user",
    "password",
    "host",
    "port",
    "project_id",
    "private_key",
    "private_key_id",
    "token_uri",
    "client_email",
    "endpoint_url",
}
# Types whose integration must be sent with every destination write, update included: no fallback to
# the stored one. Snowflake and the S3 family fall back; Postgres and Redshift need one on create only.
INTEGRATION_ON_EVERY_WRITE = {"BigQuery", "Databricks", "AzureBlob", "Redshift"}
REDSHIFT_STICKY_INTEGRATION_MESSAGE = (
    "Cannot remove the integration from a Redshift batch export that uses one. "
    "Re-send its `integration` to keep it (or a different one to swap)."
)
LEGACY_PARQUET_EXTENSION_MESSAGE = (
    "'legacy_parquet_extension' can only stay on for an export that already writes the compression codec "
    "into its Parquet file names. It cannot be turned on for a new export, or turned back on once an export "
    "moved to the standard '.parquet' extension."
)
INTEGRATION_REQUIRED_MESSAGE = {
    "AwsS3": "Integration is required for AwsS3 batch exports",
    "S3Compatible": "Integration is required for S3Compatible batch exports",
    "Snowflake": "Integration is required for Snowflake batch exports",
    "Postgres": "Integration is required for Postgres batch exports",
    "Redshift": "Integration is required for Redshift batch exports",
    "BigQuery": "Integration is required for BigQuery batch exports",
    "Databricks": "Integration is required for Databricks batch exports",
    "AzureBlob": "Integration is required for Azure Blob batch exports",
}
INTEGRATION_WRONG_KIND_MESSAGE = {
    "AwsS3": "Integration provided is not an AWS S3 integration (got kind='{kind}')",
    "S3Compatible": "Integration provided is not an S3-compatible integration (got kind='{kind}')",
    "Snowflake": "Integration is not a Snowflake integration.",
    "Postgres": "Integration is not a PostgreSQL integration.",
    "Redshift": "Integration is not a Redshift integration.",
    "BigQuery": "Integration is not a Google Cloud service account integration.",
    "Databricks": "Integration is not a Databricks integration.",
    "AzureBlob": "Integration is not an Azure Blob integration.",
}

FILE_FORMATS = ["Parquet", "JSONLines"]
COMPRESSIONS = {"Parquet": ["zstd", "lz4", "snappy", "gzip", "brotli"], "JSONLines": ["gzip", "brotli"]}
FILE_TYPES = {"S3", "AwsS3", "S3Compatible", "AzureBlob"}

HTTP_ALLOWED_URLS = ("https://us.i.posthog.com/batch/", "https://eu.i.posthog.com/batch/")

# Destination test steps (GET test/, run_test_step). Types not listed answer 404 with an empty body.
TEST_STEPS: dict[str, list[tuple[str, str]]] = {
    "AwsS3": [
        ("Ensure we can assume provided AWS role", "Assume the AWS role of the integration."),
        (
            "Check S3 bucket exists",
            "Ensure the configured S3 bucket exists and that we have the required permissions to access it.",
        ),
    ],
    "S3Compatible": [
        (
            "Check S3 bucket exists",
            "Ensure the configured S3 bucket exists and that we have the required permissions to access it.",
        )
    ],
    "S3": [
        (
            "Check S3 bucket exists",
            "Ensure the configured S3 bucket exists and that we have the required permissions to access it.",
        )
    ],
    "Snowflake": [
        ("Verify Snowflake connection", "Ensure we can connect to Snowflake with the provided credentials."),
        ("Verify warehouse", "Ensure the configured warehouse exists and we can use it."),
        ("Verify database and schema", "Ensure the configured database and schema exist."),
        ("Verify table can be created", "Ensure we can create and drop a table in the configured schema."),
    ],
    "BigQuery": [
        ("Verify BigQuery project", "Ensure the configured project exists and we can access it."),
        ("Verify BigQuery dataset", "Ensure the configured dataset exists."),
        ("Verify table can be created", "Ensure we can create and delete a table in the dataset."),
    ],
    "Databricks": [
        ("Verify Databricks connection", "Ensure we can connect to the Databricks SQL warehouse."),
        ("Verify catalog and schema", "Ensure the configured catalog and schema exist."),
    ],
    "AzureBlob": [
        ("Verify Azure Blob connection", "Ensure we can connect to the storage account."),
        ("Check container exists", "Ensure the configured container exists and we can write to it."),
    ],
}

# Realistic non-retryable errors for a destination set to fail.
DEFAULT_ERRORS = {
    "Snowflake": "SnowflakeConnectionError: 250001 (08001): Failed to connect to DB: sandbox.snowflakecomputing.com:443. Incorrect username or password was specified.",
    "Postgres": 'OperationalError: connection to server at "db.sandbox.internal" (10.0.0.5), port 5432 failed: FATAL:  password authentication failed for user "posthog"',
    "Redshift": 'OperationalError: connection to server at "sandbox.redshift.amazonaws.com" (10.0.0.7), port 5439 failed: FATAL:  password authentication failed for user "posthog"',
    "BigQuery": "Forbidden: 403 POST https://bigquery.googleapis.com/bigquery/v2/projects/sandbox-project/jobs: Access Denied: Dataset sandbox-project:analytics: Permission bigquery.tables.create denied on dataset sandbox-project:analytics",
    "S3": "ClientError: An error occurred (AccessDenied) when calling the CreateMultipartUpload operation: Access Denied",
    "AwsS3": "ClientError: An error occurred (AccessDenied) when calling the CreateMultipartUpload operation: Access Denied",
    "S3Compatible": "ClientError: An error occurred (NoSuchBucket) when calling the CreateMultipartUpload operation: The specified bucket does not exist",
    "Databricks": "DatabricksInsufficientPermissionsError: A permissions error occurred: User does not have USE CATALOG on Catalog 'main'",
    "AzureBlob": "ClientAuthenticationError: Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
    "HTTP": "NonRetryableResponseError: Received non-retryable response status code 401 from https://us.i.posthog.com/batch/",
}
DEFAULT_RETRYABLE_ERROR = "RetryableResponseError: Received retryable response status code 503 (Service Unavailable)"


def fields_for(generation: int, type_: str) -> Spec | None:
    table = GEN3_FIELDS if generation >= 3 else GEN1_FIELDS
    return table.get(type_)


def strip_secrets(value: Any, secrets: set[str]) -> Any:
    """Drop secret keys at any depth (docs/posthog-api.md, "Exports and destinations")."""
    if isinstance(value, dict):
        return {k: strip_secrets(v, secrets) for k, v in value.items() if k not in secrets}
    if isinstance(value, list):
        return [strip_secrets(v, secrets) for v in value]
    return value


def deep_merge(stored: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Merge `new` into `stored` key by key; nested dicts merge, anything else overwrites."""
    out = dict(stored)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# Errors the large seed's failing exports show in their past runs, per destination (the first is the one a
# steadily failing export keeps hitting). Written to read like the workers' own messages.
HISTORY_ERRORS: dict[str, list[str]] = {
    "AwsS3": [
        DEFAULT_ERRORS["AwsS3"],
        "ClientError: An error occurred (NoSuchBucket) when calling the CreateMultipartUpload operation: "
        "The specified bucket does not exist",
        "ClientError: An error occurred (AccessDenied) when calling the AssumeRole operation: User: "
        "arn:aws:sts::123456789012:assumed-role/posthog-batch-exports is not authorized to perform: sts:AssumeRole",
    ],
    "S3Compatible": [
        DEFAULT_ERRORS["S3Compatible"],
        "ClientError: An error occurred (InvalidAccessKeyId) when calling the PutObject operation: "
        "The Access Key Id you provided does not exist in our records.",
    ],
    "S3": [DEFAULT_ERRORS["S3"]],
    "Snowflake": [
        DEFAULT_ERRORS["Snowflake"],
        "ProgrammingError: 002003 (02000): SQL compilation error: Schema 'ANALYTICS.POSTHOG' does not exist "
        "or not authorized.",
        "ProgrammingError: 000606 (57P03): No active warehouse selected in the current session. Select an "
        "active warehouse with the 'use warehouse' command.",
    ],
    "Postgres": [
        DEFAULT_ERRORS["Postgres"],
        'UndefinedTable: relation "events" does not exist',
        "InsufficientPrivilege: permission denied for schema public",
    ],
    "Redshift": [
        DEFAULT_ERRORS["Redshift"],
        'UndefinedTable: relation "posthog_events" does not exist',
    ],
    "BigQuery": [
        DEFAULT_ERRORS["BigQuery"],
        "NotFound: 404 POST https://bigquery.googleapis.com/bigquery/v2/projects/sandbox-project/datasets/"
        "analytics/tables: Not found: Dataset sandbox-project:analytics",
    ],
    "Databricks": [
        DEFAULT_ERRORS["Databricks"],
        "DatabricksConnectionError: Failed to connect to Databricks: Invalid access token.",
    ],
    "AzureBlob": [
        DEFAULT_ERRORS["AzureBlob"],
        "ResourceNotFoundError: The specified container does not exist.",
    ],
    "HTTP": [DEFAULT_ERRORS["HTTP"]],
    "NoOp": ["NoOpError: the sandbox's no-op destination was told to fail"],
}
# What an export that fails now and then meets: timeouts and throttling that the next run gets past.
INTERMITTENT_ERRORS: dict[str, list[str]] = {
    "AwsS3": [
        "ClientError: An error occurred (SlowDown) when calling the UploadPart operation: Please reduce your request rate."
    ],
    "S3Compatible": ['EndpointConnectionError: Could not connect to the endpoint URL: "https://s3.sandbox.example/"'],
    "Snowflake": [
        "OperationalError: 250003 (08001): Failed to get the response. Hanging? method: post, url: "
        "https://sandbox.snowflakecomputing.com:443/queries/v1/query-request"
    ],
    "Postgres": ["OperationalError: server closed the connection unexpectedly"],
    "Redshift": ["OperationalError: SSL SYSCALL error: EOF detected"],
    "BigQuery": [
        "ServiceUnavailable: 503 POST https://bigquery.googleapis.com/upload/bigquery/v2/projects/sandbox-project/jobs: Service is unavailable"
    ],
    "Databricks": ["RequestError: Error during request to server: Timed out after 900 seconds"],
    "AzureBlob": ["ServiceRequestError: Connection broken: ConnectionResetError(104, 'Connection reset by peer')"],
    "HTTP": ["RetryableResponseError: Received retryable response status code 503 (Service Unavailable)"],
}
