"""Demo data for a new database (unless `seed=False` / `--empty`).

Project 1: `Hourly events to S3` (healthy), `Daily events to Snowflake` (failing for the last 4 days),
`Paused events to Postgres` (paused 2 days ago), `Events to BigQuery (backfilling)` (a 48-hour backfill
started 30 minutes ago, Running). Project 2: `Project 2 events to HTTP`. Ten and a half days of history are
produced by running the simulation itself from `now - 10.5 days`, so runs and log rows are exactly what the
workers would have written. Every secret config value contains `sandbox-canary`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import activity_log, simulation
from .exports import make_export
from .store import Store

SEED_NAMES = (
    "Hourly events to S3",
    "Daily events to Snowflake",
    "Paused events to Postgres",
    "Events to BigQuery (backfilling)",
    "Project 2 events to HTTP",
)

SNOWFLAKE_FIRST_NAME = "Snowflake events"  # what the Snowflake export was called before its rename

_BIGQUERY_SECRETS = {
    "private_key": "-----BEGIN PRIVATE KEY-----\nsandbox-canary-bigquery-private-key\n-----END PRIVATE KEY-----\n",
    "private_key_id": "sandbox-canary-bigquery-private-key-id",
    "token_uri": "https://oauth2.googleapis.com/token?sandbox-canary",
    "client_email": "sandbox-canary@sandbox-project.iam.gserviceaccount.com",
}


def _destinations(generation: int) -> dict[str, dict[str, Any]]:
    if generation >= 3:
        return {
            "s3": {
                "type": "AwsS3",
                "integration": 101,
                "config": {
                    "bucket_name": "sandbox-events",
                    "region": "us-east-1",
                    "prefix": "posthog/events/",
                    "file_format": "Parquet",
                    "compression": "zstd",
                    "max_file_size_mb": None,
                    "legacy_parquet_extension": False,
                },
            },
            "snowflake": {
                "type": "Snowflake",
                "integration": 102,
                "config": {
                    "database": "ANALYTICS",
                    "warehouse": "COMPUTE_WH",
                    "schema": "POSTHOG",
                    "table_name": "events",
                    "role": None,
                    # legacy inline credentials, kept from before the integration (never returned)
                    "user": "sandbox-canary-snowflake-user",
                    "password": "sandbox-canary-snowflake-password",
                },
            },
            "postgres": {
                "type": "Postgres",
                "integration": 103,
                "config": {
                    "database": "analytics",
                    "schema": "public",
                    "table_name": "events",
                    "host": "db.sandbox.internal",
                    "port": 5432,
                    "user": "sandbox-canary-postgres-user",
                    "password": "sandbox-canary-postgres-password",
                    "has_self_signed_cert": False,
                },
            },
            "bigquery": {
                "type": "BigQuery",
                "integration": 104,
                "config": {
                    "dataset_id": "analytics",
                    "table_id": "events",
                    "project_id": "sandbox-project",
                    "use_json_type": True,
                    **_BIGQUERY_SECRETS,
                },
            },
            "http": {
                "type": "HTTP",
                "integration": None,
                "config": {"url": "https://us.i.posthog.com/batch/", "token": "sandbox-canary-http-token"},
            },
        }
    return {
        "s3": {
            "type": "S3",
            "integration": None,
            "config": {
                "bucket_name": "sandbox-events",
                "region": "us-east-1",
                "prefix": "posthog/events/",
                "aws_access_key_id": "sandbox-canary-aws-access-key-id",
                "aws_secret_access_key": "sandbox-canary-aws-secret-access-key",
                "file_format": "Parquet",
                "compression": "zstd",
            },
        },
        "snowflake": {
            "type": "Snowflake",
            "integration": None,
            "config": {
                "account": "sandbox-xy12345",
                "user": "sandbox-canary-snowflake-user",
                "password": "sandbox-canary-snowflake-password",
                "database": "ANALYTICS",
                "warehouse": "COMPUTE_WH",
                "schema": "POSTHOG",
                "table_name": "events",
                "authentication_type": "password",
            },
        },
        "postgres": {
            "type": "Postgres",
            "integration": None,
            "config": {
                "user": "sandbox-canary-postgres-user",
                "password": "sandbox-canary-postgres-password",
                "host": "db.sandbox.internal",
                "database": "analytics",
                "schema": "public",
                "table_name": "events",
                "port": 5432,
            },
        },
        "bigquery": {
            "type": "BigQuery",
            "integration": None,
            "config": {
                "project_id": "sandbox-project",
                "dataset_id": "analytics",
                "table_id": "events",
                **_BIGQUERY_SECRETS,
            },
        },
        "http": {
            "type": "HTTP",
            "integration": None,
            "config": {"url": "https://us.i.posthog.com/batch/", "token": "sandbox-canary-http-token"},
        },
    }


def _stored(store: Store, export_id: str) -> dict[str, Any]:
    export = store.get_export(export_id)
    assert export is not None, export_id
    return export


def seed(store: Store, gen: int, earliest: datetime, now: datetime) -> None:
    """Called inside the initialising transaction; leaves the simulation at `now`."""
    dest = _destinations(gen)
    t0 = (now - timedelta(days=10, hours=12)).replace(minute=0, second=0, microsecond=0)

    def advance_to(moment: datetime) -> None:
        simulation.catch_up(store, moment, gen, earliest)

    def create(team: int, name: str, key: str, interval: str) -> dict[str, Any]:
        created = t0 + timedelta(minutes=SEED_NAMES.index(name))  # distinct created_at: a stable list order
        return make_export(store, gen, team, {"name": name, "destination": dest[key], "interval": interval}, created)

    s3 = create(1, SEED_NAMES[0], "s3", "hour")
    snowflake = create(1, SEED_NAMES[1], "snowflake", "day")
    postgres = create(1, SEED_NAMES[2], "postgres", "hour")
    bigquery = create(1, SEED_NAMES[3], "bigquery", "hour")
    create(2, SEED_NAMES[4], "http", "hour")
    del s3

    failing_since = now - timedelta(days=4, hours=1)
    advance_to(failing_since)
    snowflake = _stored(store, snowflake["id"])
    snowflake["_outcome"] = {"outcome": "fail", "error": None, "records": None}
    store.put_export(snowflake)

    paused_at = now - timedelta(days=2)
    advance_to(paused_at)
    postgres = _stored(store, postgres["id"])
    postgres.update(paused=True, last_paused_at=paused_at, last_updated_at=paused_at)
    store.put_export(postgres)

    backfill_created = now - timedelta(minutes=30)
    advance_to(backfill_created)
    end = (now - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    simulation.new_backfill(store, _stored(store, bigquery["id"]), end - timedelta(hours=48), end, backfill_created)
    advance_to(now)
    # Who made and changed them (docs/sandbox.md, "Seed data"): the Snowflake export was renamed a day in.
    renames = {snowflake["id"]: (SNOWFLAKE_FIRST_NAME, t0 + timedelta(days=1))}
    activity_log.seed_history(store, store.list_exports(include_deleted=True), renames)
