"""Destination outages (docs/sandbox.md, "Outages"): one destination down for a simulated time window, across
every export that uses it.

An outage names a destination type and, optionally, config values that narrow it (a Snowflake `account`, a
Postgres `host`, an `integration` id...). Every matching export gets the window in its `_outages` field; a
run that starts (its schedule tick, `created_at`) inside a window ends `Failed` with the outage's error, in the
computed past (`history.py`) and in the runs the simulation makes alike. Runs already finished and stored when
the outage is set are left as they were.

The default errors follow the workers' own messages where docs/posthog-api.md quotes them ("Runs": a run's
`latest_error` is `<ErrorType>: <message>`, Snowflake's connection failure, S3's endpoint failure); for the
other types they are the sandbox's wording of a connection failure.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from .errors import validation
from .store import Store
from .timeutil import drf, from_db, parse_datetime, to_db

DESTINATIONS = (
    "AwsS3",
    "S3",
    "S3Compatible",
    "Snowflake",
    "BigQuery",
    "Postgres",
    "Redshift",
    "Databricks",
    "AzureBlob",
    "HTTP",
    "NoOp",
)
MAX_ERROR_CHARS = 4000
_META = "outages"


def default_error(export: dict[str, Any]) -> str:
    """A destination-down error for this export's destination, naming its own endpoint where it has one."""
    type_ = export["destination"]["type"]
    config = export["destination"].get("config") or {}
    if type_ == "Snowflake":
        # SnowflakeClient.connect: f"Could not connect to Snowflake - {errno}: {msg}" (250001: the connector's
        # failed-to-connect code)
        return (
            "SnowflakeConnectionError: Could not connect to Snowflake - 250001: Could not connect to Snowflake "
            "backend after 2 attempt(s).Aborting"
        )
    if type_ in ("AwsS3", "S3", "S3Compatible"):
        bucket, region = config.get("bucket_name", "bucket"), config.get("region", "us-east-1")
        endpoint = config.get("endpoint_url") or f"https://{bucket}.s3.{region}.amazonaws.com"
        return f'EndpointConnectionError: Could not connect to the endpoint URL: "{endpoint}/"'
    if type_ in ("Postgres", "Redshift"):
        host, port = config.get("host", "db"), config.get("port", 5432 if type_ == "Postgres" else 5439)
        return (
            f'OperationalError: connection failed: connection to server at "{host}", port {port} failed: '
            "Connection timed out"
        )
    if type_ == "BigQuery":
        return (
            "ServiceUnavailable: 503 POST https://bigquery.googleapis.com/bigquery/v2/projects/"
            f"{config.get('project_id', 'project')}/jobs: The service is currently unavailable."
        )
    if type_ == "Databricks":
        return "DatabricksConnectionError: Failed to connect to Databricks: Connection timed out"
    if type_ == "AzureBlob":
        return "ServiceRequestError: <urllib3.connection.HTTPSConnection>: Failed to establish a new connection"
    if type_ == "HTTP":
        return f"NonRetryableResponseError: Received non-retryable response status code 503 from {config.get('url')}"
    return "NoOpError: the sandbox's no-op destination is down"


def matches(export: dict[str, Any], destination: str, match: dict[str, Any]) -> bool:
    """The export uses this destination and every `match` value (config keys, or `integration`)."""
    dest = export["destination"]
    if dest["type"] != destination:
        return False
    for key, wanted in match.items():
        have = dest.get("integration") if key == "integration" else (dest.get("config") or {}).get(key)
        if str(have) != str(wanted):
            return False
    return True


def parse(body: Any) -> dict[str, Any]:
    """The outage a control request asks for, or a 400 naming the field."""
    if not isinstance(body, dict):
        raise validation("The body must be a JSON object.")
    destination = body.get("destination")
    if destination not in DESTINATIONS:
        raise validation(f"'destination' must be one of {', '.join(DESTINATIONS)}.", "destination")
    match = body.get("match") or {}
    if not isinstance(match, dict) or not all(isinstance(v, (str, int)) for v in match.values()):
        raise validation("'match' must be an object of config keys (or 'integration') to values.", "match")
    bounds = {}
    for name in ("start", "end"):
        value = body.get(name)
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None or parsed.tzinfo is None:
            raise validation(f"'{name}' must be an ISO-8601 datetime with an offset.", name)
        bounds[name] = parsed
    if bounds["start"] >= bounds["end"]:
        raise validation("'start' must be before 'end'.", "start")
    error = body.get("error")
    if error is not None and (not isinstance(error, str) or not error or len(error) > MAX_ERROR_CHARS):
        raise validation(f"'error' must be a non-empty string of at most {MAX_ERROR_CHARS} characters.", "error")
    project = body.get("project")
    if project is not None and (isinstance(project, bool) or not isinstance(project, int)):
        raise validation("'project' must be a project id or null.", "project")
    return {
        "id": str(uuid.uuid4()),
        "destination": destination,
        "match": match,
        "start": to_db(bounds["start"]),
        "end": to_db(bounds["end"]),
        "error": error,
        "project": project,
    }


def add(store: Store, outage: dict[str, Any]) -> dict[str, Any]:
    """Record the outage and give its window to every matching export; the outage as the control answers it."""
    hit = []
    for export in store.list_exports(team_id=outage["project"]):
        if not matches(export, outage["destination"], outage["match"]):
            continue
        window = {
            "id": outage["id"],
            "start": outage["start"],
            "end": outage["end"],
            "error": outage["error"] or default_error(export),
        }
        export["_outages"] = [*(export.get("_outages") or []), window]
        store.put_export(export)
        hit.append(export["id"])
    stored = [*_stored(store), {**outage, "exports": hit}]
    store.set_meta(_META, json.dumps(stored))
    return _render(stored[-1])


def listed(store: Store) -> list[dict[str, Any]]:
    return [_render(o) for o in _stored(store)]


def clear(store: Store) -> None:
    """End every outage: the runs made from now on, and the computed past, are as if there had been none."""
    for export in store.list_exports(include_deleted=True):
        if export.pop("_outages", None) is not None:
            store.put_export(export)
    store.set_meta(_META, "[]")


def error_at(export: dict[str, Any], moment: datetime) -> str | None:
    """The error of an outage of this export's destination at `moment`, if one is on then."""
    for window in export.get("_outages") or ():
        if from_db(window["start"]) <= moment < from_db(window["end"]):
            return str(window["error"])
    return None


def _stored(store: Store) -> list[dict[str, Any]]:
    text = store.get_meta(_META)
    return list(json.loads(text)) if text else []


def _render(outage: dict[str, Any]) -> dict[str, Any]:
    return {**outage, "start": drf(from_db(outage["start"])), "end": drf(from_db(outage["end"]))}
