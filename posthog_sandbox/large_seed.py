"""A project of a real size: project 1 seeded with N exports (`SandboxConfig(exports=N)`, `--exports N`).

The same N gives the same project every time (names, ids, configs, patterns; times are relative to the
sandbox's clock): every destination type and interval, about 10% failing in the patterns operators meet
(failing every run since a date, failing now and then, failing and then paused), about 10% paused, 30 days
of runs at each export's interval with record counts that follow the day, log lines for every run, and a
few backfills, running and finished. Among them, the fleet-scale scenes (`scenes.py`: silent failures, a
billing window, long failures, auto-pause...) and, when asked, hostile text (`hostile.py`). Past runs are
computed, not stored (see `history.py`), so N = 2,000 starts in well under a second; project 2 keeps its one
HTTP export.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from . import activity_log, hostile, scenes, simulation
from .destinations import HISTORY_ERRORS
from .exports import make_export
from .history import HISTORY
from .store import Store
from .timeutil import INTERVALS, floor_to_interval, to_db

HISTORY_DAYS = 30
# Runs before this many minutes ago are computed; later ones are made by the simulation on start.
COMPUTED_UNTIL_MINUTES = 10

INTERVAL_WEIGHTS = {"hour": 55, "day": 27, "week": 5, "every 15 minutes": 8, "every 5 minutes": 5}
# The hour (UTC) a daily export runs at (its `offset_hour`): many at midnight, many in working hours.
DAILY_HOURS = (0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 10, 11, 12, 12, 13, 14, 14, 15, 18, 20, 22)
GEN3_TYPES = [
    "AwsS3",
    "Snowflake",
    "BigQuery",
    "Postgres",
    "Redshift",
    "Databricks",
    "S3Compatible",
    "AzureBlob",
    "HTTP",
]
GEN1_TYPES = ["S3", "Snowflake", "BigQuery", "Postgres", "Redshift", "Databricks", "HTTP"]
TEAMS = [
    "Analytics",
    "Marketing",
    "Finance",
    "Product",
    "Growth",
    "Data science",
    "Billing",
    "Warehouse",
    "ML features",
    "Compliance",
    "Sales ops",
    "Support",
    "Security",
    "Platform",
    "Lifecycle",
]
LABELS = {
    "AwsS3": "S3",
    "S3": "S3",
    "S3Compatible": "R2",
    "Snowflake": "Snowflake",
    "BigQuery": "BigQuery",
    "Postgres": "Postgres",
    "Redshift": "Redshift",
    "Databricks": "Databricks",
    "AzureBlob": "Azure Blob",
    "HTTP": "PostHog (HTTP)",
}
INTEGRATIONS = {
    "AwsS3": 101,
    "Snowflake": 102,
    "Postgres": 103,
    "BigQuery": 104,
    "Databricks": 105,
    "AzureBlob": 106,
    "S3Compatible": 107,
    "Redshift": 108,
}


def _config(type_: str, generation: int, slug: str, index: int) -> dict[str, Any]:
    table = f"posthog_{slug}_{index}"
    if type_ in ("AwsS3", "S3Compatible", "S3"):
        config: dict[str, Any] = {
            "bucket_name": f"acme-{slug}-exports",
            "region": "us-east-1" if type_ != "S3Compatible" else "auto",
            "prefix": f"posthog/{slug}/{index}/",
            "file_format": "Parquet" if index % 3 else "JSONLines",
            "compression": "zstd" if index % 3 else "gzip",
        }
        if type_ == "S3":
            config.update(
                aws_access_key_id=f"sandbox-canary-aws-access-key-id-{index}",
                aws_secret_access_key=f"sandbox-canary-aws-secret-access-key-{index}",
            )
        return config
    if type_ == "Snowflake":
        config = {"database": "ANALYTICS", "warehouse": "EXPORT_WH", "schema": slug.upper(), "table_name": table}
        if generation < 3:
            config.update(
                account="sandbox-xy12345",
                user=f"sandbox-canary-snowflake-user-{index}",
                password=f"sandbox-canary-snowflake-password-{index}",
            )
        return config
    if type_ == "BigQuery":
        config = {"dataset_id": slug, "table_id": table, "project_id": "acme-analytics"}
        if generation < 3:
            config.update(
                private_key="-----BEGIN PRIVATE KEY-----\nsandbox-canary-bigquery-private-key\n-----END PRIVATE KEY-----\n",
                private_key_id="sandbox-canary-bigquery-private-key-id",
                token_uri="https://oauth2.googleapis.com/token?sandbox-canary",
                client_email="sandbox-canary@acme-analytics.iam.gserviceaccount.com",
            )
        return config
    if type_ in ("Postgres", "Redshift"):
        host = "db.acme.internal" if type_ == "Postgres" else "acme.abc123.us-east-1.redshift.amazonaws.com"
        config = {"database": "analytics", "schema": slug, "table_name": table, "host": host}
        config["port"] = 5432 if type_ == "Postgres" else 5439
        if generation < 3:
            config.update(user=f"sandbox-canary-{type_.lower()}-user", password="sandbox-canary-db-password")
        return config
    if type_ == "Databricks":
        return {"http_path": "/sql/1.0/warehouses/abc123", "catalog": "main", "schema": slug, "table_name": table}
    if type_ == "AzureBlob":
        return {"container_name": f"{slug}-exports", "prefix": f"posthog/{index}/", "file_format": "Parquet"}
    return {"url": "https://us.i.posthog.com/batch/", "token": f"sandbox-canary-http-token-{index}"}


def _patterns(rng: random.Random, n: int) -> list[str]:
    """About 10% failing (three kinds) and 10% paused; the rest healthy; shuffled the same way for one N."""
    failing_since = round(n * 0.04)
    intermittent = round(n * 0.03)
    failing_then_paused = round(n * 0.03)
    paused = round(n * 0.10)
    out = (
        ["failing_since"] * failing_since
        + ["intermittent"] * intermittent
        + ["failing_then_paused"] * failing_then_paused
        + ["paused"] * paused
    )
    out += ["healthy"] * (n - len(out))
    rng.shuffle(out)
    return out


def seed_large(
    store: Store, generation: int, earliest: datetime, now: datetime, n: int, hostile_text: bool = False
) -> None:
    """Seed project 1 with `n` exports (inside the initialising transaction); project 2 gets its HTTP export.
    The scenes (`scenes.py`) and, with `hostile_text`, the hostile strings (`hostile.py`) are given before
    anything is stored."""
    rng = random.Random(f"posthog-sandbox-exports-{n}")
    types = GEN3_TYPES if generation >= 3 else GEN1_TYPES
    intervals = list(INTERVAL_WEIGHTS)
    weights = list(INTERVAL_WEIGHTS.values())
    until = now - timedelta(minutes=COMPUTED_UNTIL_MINUTES)
    patterns = _patterns(rng, n)
    offsets = random.Random(f"posthog-sandbox-offsets-{n}")  # its own stream: the other draws stay as they were
    names: set[str] = set()
    seeded: list[dict[str, Any]] = []
    for index in range(n):
        type_ = types[index % len(types)]  # every destination type, evenly
        interval = intervals[index % len(intervals)] if index < len(intervals) else rng.choices(intervals, weights)[0]
        model = "events" if type_ == "HTTP" or rng.random() < 0.8 else rng.choice(["persons", "sessions"])
        team = TEAMS[rng.randrange(len(TEAMS))]
        slug = team.lower().replace(" ", "_")
        name = f"{team} {model} to {LABELS[type_]}"
        if name in names:
            name = f"{name} ({interval})"
        suffix = 2
        while name in names:
            name = f"{team} {model} to {LABELS[type_]} #{suffix}"
            suffix += 1
        names.add(name)
        step = INTERVALS[interval]
        offset = offsets.choice(DAILY_HOURS) * 3600 if interval == "day" else None
        age = (
            timedelta(days=HISTORY_DAYS + rng.randrange(0, 400))
            if rng.random() < 0.85
            else timedelta(days=rng.randrange(3, HISTORY_DAYS))
        )  # most exports are older than the 30 days shown; some were made within them
        created = (now - age).replace(second=0, microsecond=0) - timedelta(minutes=index)
        first = floor_to_interval(max(created, now - timedelta(days=HISTORY_DAYS)), interval, offset) + step
        pattern = patterns[index]
        history: dict[str, Any] = {
            "seed": rng.getrandbits(62),
            "pattern": pattern,
            "from": to_db(first),
            "until": to_db(until),
            "rate": round(rng.choice([40, 150, 600, 2500, 9000, 40000]) * rng.uniform(0.6, 1.6), 1)
            / (8 if model != "events" else 1),
        }
        span = until - first
        if pattern in ("failing_since", "failing_then_paused"):
            since = first + span * rng.uniform(0.55, 0.95)
            history["failing_since"] = to_db(since)
            history["error"] = HISTORY_ERRORS[type_][rng.randrange(len(HISTORY_ERRORS[type_]))]
            if pattern == "failing_then_paused":
                paused_at = min(until, since + step * rng.randint(3, 12))
                history["paused_at"] = to_db(paused_at)
        elif pattern == "paused":
            history["paused_at"] = to_db(first + span * rng.uniform(0.3, 0.97))
        destination: dict[str, Any] = {"type": type_, "config": _config(type_, generation, slug, index)}
        destination["integration"] = INTEGRATIONS.get(type_) if generation >= 3 else None
        fields: dict[str, Any] = {"name": name, "destination": destination, "interval": interval, "model": model}
        fields["interval_offset"] = offset
        export_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        export = make_export(store, generation, 1, fields, created, export_id, save=False)
        export[HISTORY] = history
        paused_at_text = history.get("paused_at")
        if paused_at_text:
            paused_at = datetime.fromisoformat(paused_at_text)
            export.update(paused=True, last_paused_at=paused_at, last_updated_at=paused_at)
        if pattern in ("failing_since", "failing_then_paused"):
            export["_outcome"] = {"outcome": "fail", "error": history["error"], "records": None}
        elif pattern == "intermittent":
            export["_outcome"] = {"outcome": "intermittent", "error": None, "records": None}
        # the simulation takes over after the computed past
        export["next_tick"] = simulation.next_tick_after(export, until)
        seeded.append(export)
    scenes.apply(seeded, n, now)
    if hostile_text:
        hostile.apply(seeded)
    healthy_hourly = []
    for export in seeded:
        store.put_export(export)
        profile = export[HISTORY]
        plain = not any(profile.get(k) for k in ("silent_since", "never", "records_failed"))
        if profile["pattern"] == "healthy" and export["interval"] == "hour" and plain:
            healthy_hourly.append(export)
    _http_export_in_project_2(store, generation, now, str(uuid.UUID(int=rng.getrandbits(128), version=4)))
    _backfills(store, rng, healthy_hourly, now)
    simulation.catch_up(store, now, generation, earliest)
    activity_log.seed_history(store, store.list_exports(include_deleted=True))  # who created and paused them


def _http_export_in_project_2(store: Store, generation: int, now: datetime, export_id: str) -> None:
    destination = {
        "type": "HTTP",
        "integration": None,
        "config": {"url": "https://us.i.posthog.com/batch/", "token": "sandbox-canary-http-token"},
    }
    created = (now - timedelta(days=10)).replace(minute=0, second=0, microsecond=0)
    fields = {"name": "Project 2 events to HTTP", "destination": destination, "interval": "day"}
    make_export(store, generation, 2, fields, created, export_id)


def _backfills(store: Store, rng: random.Random, exports: list[dict[str, Any]], now: datetime) -> None:
    """Two running backfills and three finished ones, on healthy hourly exports."""
    if not exports:
        return
    chosen = rng.sample(exports, min(5, len(exports)))
    hour = timedelta(hours=1)
    for position, export in enumerate(chosen):
        end = (now - timedelta(days=2 + position)).replace(minute=0, second=0, microsecond=0)
        if position < 2:  # running: started minutes ago, 24 and 36 hours to go through
            created = now - timedelta(minutes=15 + 10 * position)
            start = end - hour * (24 + 12 * position)
        else:  # finished days ago
            created = now - timedelta(days=position, hours=3)
            start = end - hour * (6 * position)
        simulation.new_backfill(store, export, start, end, created, str(uuid.UUID(int=rng.getrandbits(128), version=4)))
