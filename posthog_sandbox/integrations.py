"""PostHog's integrations (stored credentials) as far as batch exports use them (docs/posthog-api.md,
"Integrations"): the seeded ones, `GET/POST /api/projects/{id}/integrations/`, `GET/DELETE .../{id}/`, and
the control that adds any kind.

An integration is a row of the `integrations` table (id, team, kind: what the export rules in
`validation.py` read) plus its details in `integration_details` (this module owns that SQL): the
`integration_id` PostHog derives per kind, `config` (shown), `sensitive_config` (never shown), `errors`,
`created_at`, `created_by`. There is no update route: a credential is rotated by creating a new
integration (named kinds) or by creating the same one again (the kinds PostHog upserts).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from . import organization
from .errors import invalid_choice, not_found, required, server_error, validation
from .pagination import limit_offset_page, page_window
from .store import Store
from .timeutil import drf, from_db, to_db


class Ctx(Protocol):
    """What a route handler here reads of `handlers.Ctx` (not imported: handlers imports this module)."""

    @property
    def store(self) -> Store: ...

    project: int
    query: Any
    body: Any
    url: str
    now: datetime


Result = tuple[int, Any]

# Integration.IntegrationKind (posthog/models/integration/model.py): the values `kind` accepts.
KINDS = (
    "anthropic",
    "apns",
    "aws-redshift",
    "aws-s3",
    "azure-blob",
    "bing-ads",
    "clickup",
    "customerio-app",
    "customerio-track",
    "customerio-webhook",
    "databricks",
    "email",
    "firebase",
    "github",
    "gitlab",
    "google-ads",
    "google-analytics",
    "google-calendar",
    "google-cloud-service-account",
    "google-cloud-storage",
    "google-pubsub",
    "google-search-console",
    "google-sheets",
    "hubspot",
    "instagram",
    "intercom",
    "jira",
    "linear",
    "linkedin-ads",
    "meta-ads",
    "pardot",
    "pinterest-ads",
    "postgresql",
    "posthog",
    "reddit-ads",
    "resend",
    "s3-compatible",
    "salesforce",
    "slack",
    "slack-posthog-code",
    "snapchat",
    "snowflake",
    "stripe",
    "tiktok-ads",
    "twilio",
    "vercel",
    "youtube-analytics",
)

CANARY_KEY_ID = "sandbox-canary-aws-access-key-id"
CANARY_SECRET = "sandbox-canary-aws-secret-access-key"


# ---------------------------------------------------------------------------------------------- storage


def _details(store: Store, id_: int) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = store.conn.execute(
        "SELECT integration_id, config, errors, created_at, created_by FROM integration_details WHERE id = ?",
        (id_,),
    ).fetchone()
    return row


def _write(
    store: Store,
    id_: int,
    team_id: int,
    kind: str,
    integration_id: str,
    config: dict[str, Any],
    sensitive_config: dict[str, Any],
    created_at: datetime,
    created_by: int | None,
) -> None:
    store.add_integration(id_, team_id, kind)
    store.conn.execute(
        "INSERT OR REPLACE INTO integration_details VALUES (?, ?, ?, ?, ?, ?, ?)",
        (id_, integration_id, json.dumps(config), json.dumps(sensitive_config), "", to_db(created_at), created_by),
    )


def _find(store: Store, team_id: int, kind: str, integration_id: str) -> dict[str, Any] | None:
    """The row with this (team, kind, integration_id), PostHog's unique constraint."""
    row = store.conn.execute(
        "SELECT i.id, d.created_at FROM integrations i JOIN integration_details d ON d.id = i.id "
        "WHERE i.team_id = ? AND i.kind = ? AND d.integration_id = ?",
        (team_id, kind, integration_id),
    ).fetchone()
    return {"id": row[0], "created_at": from_db(row[1])} if row else None


def _next_id(store: Store) -> int:
    return int(store.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM integrations").fetchone()[0])


def sensitive_config(store: Store, id_: int) -> dict[str, Any]:
    """The stored secrets of an integration: for the sandbox's own checks, never for an answer."""
    row = store.conn.execute("SELECT sensitive_config FROM integration_details WHERE id = ?", (id_,)).fetchone()
    return dict(json.loads(row[0])) if row else {}


# ---------------------------------------------------------------------------------------------- seed


def _seeded(team: int) -> dict[int, tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """offset -> (kind, integration_id, config, sensitive_config), shaped as each kind's model writes them.
    Every secret contains `sandbox-canary`."""
    aws = {"aws_access_key_id": CANARY_KEY_ID, "aws_secret_access_key": CANARY_SECRET}
    gcp_email = "posthog-exports@sandbox-project.iam.gserviceaccount.com"
    databricks_host = "dbc-1a2b3c4d-5e6f.cloud.databricks.com"
    return {
        1: ("aws-s3", "acme-prod-aws", {"name": "acme-prod-aws", "aws_account_id": "123456789012"}, aws),
        2: (
            "snowflake",
            "acme-snowflake-a",
            {
                "name": "acme-snowflake-a",
                "account": "acme-xy12345",
                "user": "POSTHOG_EXPORT",
                "authentication_type": "password",
            },
            {"password": "sandbox-canary-snowflake-password-a"},
        ),
        3: (
            "postgresql",
            f"{team}-db.sandbox.internal-5432-posthog_export",
            {
                "host": "db.sandbox.internal",
                "port": 5432,
                "user": "posthog_export",
                "ssl_mode": "require",
                "ssl_root_cert": None,
            },
            {"password": "sandbox-canary-postgresql-password"},
        ),
        4: (
            "google-cloud-service-account",
            f"{gcp_email}-{team}-key-file",
            {"project_id": "sandbox-project", "service_account_email": gcp_email},
            {
                "private_key": "-----BEGIN PRIVATE KEY-----\nsandbox-canary-gcp-private-key\n-----END PRIVATE KEY-----\n",
                "private_key_id": "sandbox-canary-gcp-private-key-id",
                "token_uri": "https://oauth2.googleapis.com/token?sandbox-canary",
            },
        ),
        5: (
            "databricks",
            databricks_host,
            {"server_hostname": databricks_host},
            {"client_id": "sandbox-canary-databricks-client-id", "client_secret": "sandbox-canary-databricks-secret"},
        ),
        6: (
            "azure-blob",
            "acmeexports",
            {},
            {
                "connection_string": "DefaultEndpointsProtocol=https;AccountName=acmeexports;"
                "AccountKey=sandbox-canary-azure-account-key;EndpointSuffix=core.windows.net"
            },
        ),
        7: (
            "s3-compatible",
            "acme-r2",
            {"name": "acme-r2", "endpoint_url": "https://0123456789abcdef.r2.cloudflarestorage.com"},
            aws,
        ),
        8: (
            "aws-redshift",
            "acme-redshift",
            {"name": "acme-redshift", "aws_account_id": "123456789012", "user": "posthog_export"},
            aws,
        ),
        # A second of each kind an export may swap to (PostHog's update tests swap integrations).
        9: ("aws-s3", "acme-prod-aws-2", {"name": "acme-prod-aws-2", "aws_account_id": "123456789012"}, aws),
        10: (
            "databricks",
            f"2-{databricks_host}",
            {"server_hostname": f"2-{databricks_host}"},
            {
                "client_id": "sandbox-canary-databricks-client-id-2",
                "client_secret": "sandbox-canary-databricks-secret-2",
            },
        ),
        # "B": a second Snowflake credential (key-pair) created a few days ago, to rotate exports onto.
        11: (
            "snowflake",
            "acme-snowflake-b",
            {
                "name": "acme-snowflake-b",
                "account": "acme-xy12345",
                "user": "POSTHOG_EXPORT_B",
                "authentication_type": "keypair",
            },
            {"private_key": "-----BEGIN PRIVATE KEY-----\nsandbox-canary-snowflake-b\n-----END PRIVATE KEY-----\n"},
        ),
    }


SNOWFLAKE_B = 11  # offset of the rotation target: integration 111 in project 1, 211 in project 2


def seed(store: Store, now: datetime) -> None:
    """The integrations of every new database, seeded or empty: ids `project * 100 + offset` in projects 1
    and 2 (`_seeded`), made by colleagues months ago, B a few days ago."""
    people = (organization.KEY_USER, *organization.COLLEAGUES)
    for team in (1, 2):
        for offset, (kind, integration_id, config, secrets) in _seeded(team).items():
            age = timedelta(days=3, hours=offset) if offset == SNOWFLAKE_B else timedelta(days=120, hours=offset)
            author = people[offset % len(people)].id
            _write(store, team * 100 + offset, team, kind, integration_id, config, secrets, now - age, author)


def add(
    store: Store,
    team_id: int,
    kind: str,
    integration_id: str,
    config: dict[str, Any],
    sensitive_config: dict[str, Any],
    now: datetime,
    created_by: int | None,
) -> int:
    """A new integration of any kind (the `/_sandbox/integrations` control); its id."""
    if _find(store, team_id, kind, integration_id):
        raise validation(f"An integration named '{integration_id}' already exists")
    id_ = _next_id(store)
    _write(store, id_, team_id, kind, integration_id, config, sensitive_config, now, created_by)
    return id_


# ---------------------------------------------------------------------------------------------- shape


def display_name(kind: str, integration_id: str | None, config: dict[str, Any]) -> str:
    """Integration.display_name for the kinds batch exports use (anything else: `ID: <integration_id>`)."""
    name = integration_id or "unknown ID"
    if kind in ("google-cloud-service-account", "databricks"):
        return name
    if kind in ("aws-s3", "aws-redshift"):
        if config.get("aws_role_arn"):
            detail = f"AWS role '{config['aws_role_arn']}'"
        elif config.get("aws_account_id"):
            detail = f"AWS account {config['aws_account_id']}"
        elif kind == "aws-redshift" and config.get("user") and config.get("host"):
            detail = f"{config['user']}@{config['host']}"
        else:
            detail = "access key"
        return f"{name} ({detail})"
    if kind == "s3-compatible":
        endpoint = config.get("endpoint_url")
        return f"{name} ({f'access key, {endpoint}' if endpoint else 'access key'})"
    if kind == "snowflake":
        return f"{name} (account: {config.get('account')}, {config.get('authentication_type', 'password')} auth)"
    return f"ID: {integration_id}"


def render(store: Store, integration: dict[str, Any]) -> dict[str, Any]:
    """IntegrationSerializer: id, kind, config, created_at, created_by, errors, display_name; never
    sensitive_config."""
    details = _details(store, integration["id"])
    integration_id, config_text, errors, created_at, created_by = details or (None, "{}", "", None, None)
    config = json.loads(config_text)
    return {
        "id": integration["id"],
        "kind": integration["kind"],
        "config": config,
        "created_at": drf(from_db(created_at)) if created_at else None,
        "created_by": organization.basic(created_by),
        "errors": errors,
        "display_name": display_name(integration["kind"], integration_id, config),
    }


# ---------------------------------------------------------------------------------------------- routes


def _get(ctx: Ctx, id_: str) -> dict[str, Any]:
    integration = ctx.store.get_integration(int(id_), ctx.project) if id_.isdigit() else None
    if integration is None:
        raise not_found()
    return integration


def list_integrations(ctx: Ctx) -> Result:
    """A limit/offset page (100 by default), `kind` filtering exactly."""
    limit, offset = page_window(ctx.query, 100)
    kind = ctx.query.get("kind")
    if kind and kind not in KINDS:
        raise validation(
            f"Select a valid choice. {kind} is not one of the available choices.", "kind", "invalid_choice"
        )
    rows = [i for i in ctx.store.list_integrations() if i["team_id"] == ctx.project and (not kind or i["kind"] == kind)]
    page = [render(ctx.store, i) for i in rows[offset : offset + limit]]
    return 200, limit_offset_page(len(rows), page, ctx.url, limit, offset)


def retrieve_integration(ctx: Ctx, id: str) -> Result:
    return 200, render(ctx.store, _get(ctx, id))


def destroy_integration(ctx: Ctx, id: str) -> Result:
    """Delete; the batch-export destinations that used it keep running without it (on_delete=SET_NULL)."""
    integration = _get(ctx, id)
    for export in ctx.store.list_exports(team_id=ctx.project, include_deleted=True):
        if export["destination"].get("integration") == integration["id"]:
            export["destination"] = {**export["destination"], "integration": None}
            ctx.store.put_export(export)
    ctx.store.conn.execute("DELETE FROM integration_details WHERE id = ?", (integration["id"],))
    ctx.store.conn.execute("DELETE FROM integrations WHERE id = ?", (integration["id"],))
    return 204, None


def create_integration(ctx: Ctx) -> Result:
    """IntegrationSerializer.create for the kinds batch exports use; other kinds are not served here."""
    body = ctx.body
    if not isinstance(body, dict):
        raise validation(f"Invalid data. Expected a dictionary, but got {type(body).__name__}.")
    if "kind" not in body:
        raise required("kind")
    kind = body["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        raise invalid_choice(kind, "kind")
    if kind == "slack-posthog-code":
        raise validation("This integration kind is deprecated and can no longer be created.", "kind")
    config = body.get("config", {})
    if not isinstance(config, dict):
        raise server_error()  # PostHog calls config.get(...) on whatever JSON was sent
    build = CREATORS.get(kind)
    if build is None:
        raise validation("Kind not supported")
    integration_id, shown, secrets, upsert = build(ctx, config)
    existing = _find(ctx.store, ctx.project, kind, integration_id)
    if existing and not upsert:
        raise validation(f"An integration named '{integration_id}' already exists")
    id_ = existing["id"] if existing else _next_id(ctx.store)
    created_at = existing["created_at"] if existing else ctx.now
    user = organization.KEY_USER.id
    _write(ctx.store, id_, ctx.project, kind, integration_id, shown, secrets, created_at, user)
    return 201, render(ctx.store, {"id": id_, "kind": kind})


# ---------------------------------------------------------------------------------------------- per kind

Built = tuple[str, dict[str, Any], dict[str, Any], bool]  # integration_id, config, sensitive_config, upsert


def _internal_host(host: str) -> bool:
    """The part of PostHog's SSRF guards the sandbox can apply without DNS: local names and IP literals
    that are not public."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def _strings(*values: Any) -> bool:
    return all(isinstance(v, str) for v in values)


_AWS_KEY_ID = re.compile(r"^(AKIA|ASIA)[A-Z0-9]{16}$")


def _aws_s3(ctx: Ctx, config: dict[str, Any]) -> Built:
    name, key_id, secret = config.get("name"), config.get("aws_access_key_id"), config.get("aws_secret_access_key")
    if not (name and key_id and secret):
        raise validation("Name, access key ID, and secret access key must be provided")
    if not _strings(name, key_id, secret):
        raise validation("Name, access key ID, and secret access key must be strings")
    if not _AWS_KEY_ID.match(key_id):
        # PostHog asks AWS STS; the sandbox refuses what STS would never accept as a key id.
        raise validation("AWS credentials are not valid: The security token included in the request is invalid.")
    account_id = str(int(hashlib.sha256(key_id.encode()).hexdigest(), 16) % 10**12).zfill(12)
    return (
        name,
        {"name": name, "aws_account_id": account_id},
        {"aws_access_key_id": key_id, "aws_secret_access_key": secret},
        False,
    )


def _s3_compatible(ctx: Ctx, config: dict[str, Any]) -> Built:
    name, endpoint = config.get("name"), config.get("endpoint_url")
    key_id, secret = config.get("aws_access_key_id"), config.get("aws_secret_access_key")
    if not (name and endpoint and key_id and secret):
        raise validation("Name, endpoint URL, access key ID, and secret access key must be provided")
    if not _strings(name, endpoint, key_id, secret):
        raise validation("Name, endpoint URL, access key ID, and secret access key must be strings")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise validation("Invalid endpoint URL: only http and https URLs with a host are allowed")
    if _internal_host(parts.hostname):
        raise validation(f"Invalid endpoint URL: '{parts.hostname}' is not a public host")
    return (
        name,
        {"name": name, "endpoint_url": endpoint},
        {"aws_access_key_id": key_id, "aws_secret_access_key": secret},
        False,
    )


_SNOWFLAKE_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _snowflake(ctx: Ctx, config: dict[str, Any]) -> Built:
    name, account, user = config.get("name"), config.get("account"), config.get("user")
    authentication_type = config.get("authentication_type", "password")
    password, private_key = config.get("password"), config.get("private_key")
    passphrase = config.get("private_key_passphrase")
    if not (name and account and user):
        raise validation("Name, account, and user must be provided")
    if not _strings(name, account, user, authentication_type):
        raise validation("Name, account, user, and authentication type must be strings")
    if not all(v is None or isinstance(v, str) for v in (password, private_key, passphrase)):
        raise validation("Password, private key, and private key passphrase must be strings")
    if not _SNOWFLAKE_ACCOUNT.fullmatch(account):
        raise validation(f"Snowflake integration is not valid: invalid account identifier '{account}'")
    secrets: dict[str, Any] = {}
    if authentication_type == "password":
        if not password:
            raise validation("Password is required for password authentication")
        secrets["password"] = password
    elif authentication_type == "keypair":
        if not private_key:
            raise validation("Private key is required for key-pair authentication")
        secrets["private_key"] = private_key
        if passphrase:
            secrets["private_key_passphrase"] = passphrase
    else:
        raise validation(f"Invalid authentication type: {authentication_type}")
    shown = {"name": name, "account": account, "user": user, "authentication_type": authentication_type}
    return name, shown, secrets, False


def _postgresql(ctx: Ctx, config: dict[str, Any]) -> Built:
    host, port, user, password = (
        config.get("host"),
        config.get("port", 5432),
        config.get("user"),
        config.get("password"),
    )
    ssl_mode, ssl_root_cert = config.get("ssl_mode", "require"), config.get("ssl_root_cert")
    if not (host and port and user and password):
        raise validation("Host, port, user, and password must be provided")
    if not _strings(host, user, password):
        raise validation("Host, user, and password must be strings")
    if _internal_host(host):
        raise validation(f"Invalid host: '{host}'")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise validation("Port must be an integer") from None
    if port < 0 or port > 65535:
        raise validation("Port must be between 0 and 65535")
    if ssl_mode not in ("require", "verify-ca", "verify-full"):
        raise validation("SSL mode must be one of: require, verify-ca, verify-full")
    if ssl_mode in ("verify-ca", "verify-full"):
        if not ssl_root_cert:
            raise validation("Root certificate must be provided when verifying server certificates")
        if not isinstance(ssl_root_cert, str):
            raise validation("Root certificate must be a string")
    shown = {"host": host, "port": port, "user": user, "ssl_mode": ssl_mode, "ssl_root_cert": ssl_root_cert}
    return f"{ctx.project}-{host}-{port}-{user}", shown, {"password": password}, True


def _databricks(ctx: Ctx, config: dict[str, Any]) -> Built:
    host, client_id, secret = config.get("server_hostname"), config.get("client_id"), config.get("client_secret")
    if not (host and client_id and secret):
        raise validation("Server hostname, client ID, and client secret must be provided")
    if not _strings(host, client_id, secret):
        raise validation("Server hostname, client ID, and client secret must be strings")
    if host.startswith("http"):
        raise validation("Databricks integration is not valid: 'server_hostname' should not be a full URL")
    if _internal_host(host):
        raise validation(f"Databricks integration error: could not validate hostname '{host}'")
    return host, {"server_hostname": host}, {"client_id": client_id, "client_secret": secret}, True


def _google_service_account(ctx: Ctx, config: dict[str, Any]) -> Built:
    email, project_id = config.get("service_account_email"), config.get("project_id")
    if not (email and project_id):
        raise validation("Service account email and project ID must be provided")
    if not _strings(email, project_id):
        raise validation("Service account email and project ID must be strings")
    key = {k: config.get(k) for k in ("private_key", "private_key_id", "token_uri")}
    with_key = all(isinstance(v, str) for v in key.values())
    if config.get("private_key") is None and _impersonated_elsewhere(ctx, email):
        raise validation("Cannot create Google Cloud service account integration: Invalid service account")
    variant = "key-file" if with_key else "impersonated"
    shown = {"project_id": project_id, "service_account_email": email}
    return f"{email}-{ctx.project}-{variant}", shown, key if with_key else {}, True


def _impersonated_elsewhere(ctx: Ctx, email: str) -> bool:
    """One organization only may impersonate a service account (PostHog checks every organization)."""
    mine = organization.PROJECTS.get(ctx.project)
    for integration in ctx.store.list_integrations():
        if integration["kind"] != "google-cloud-service-account":
            continue
        if organization.PROJECTS.get(integration["team_id"]) == mine:
            continue
        details = _details(ctx.store, integration["id"])
        shown = json.loads(details[1]) if details else {}
        if shown.get("service_account_email") == email and "private_key" not in sensitive_config(
            ctx.store, integration["id"]
        ):
            return True
    return False


def _azure_blob(ctx: Ctx, config: dict[str, Any]) -> Built:
    connection_string = config.get("connection_string")
    if not connection_string:
        raise validation("Connection string must be provided")
    if not isinstance(connection_string, str):
        raise validation("Connection string must be a string")
    account = next(
        (p.strip().split("=", 1)[1] for p in connection_string.split(";") if p.strip().startswith("AccountName=")),
        None,
    )
    if not account:
        raise validation(
            "Could not extract AccountName from connection string. "
            "Ensure it contains 'AccountName=<your-account-name>;'"
        )
    return account, {}, {"connection_string": connection_string}, True


# aws-redshift has no branch in PostHog's create: it answers "Kind not supported" like every kind not here.
CREATORS = {
    "aws-s3": _aws_s3,
    "s3-compatible": _s3_compatible,
    "snowflake": _snowflake,
    "postgresql": _postgresql,
    "databricks": _databricks,
    "google-cloud-service-account": _google_service_account,
    "azure-blob": _azure_blob,
}
