"""Create/update and backfill validation (docs/posthog-api.md, "Exports and destinations", "Backfills"), first error only.

Fields are checked in serializer field order, each followed by its `validate_<field>` hook, so the first
error raised is the one DRF would report.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from . import destinations as d
from .errors import ApiError, invalid_choice, permission_denied, required, server_error, validation
from .timeutil import INTERVALS, UTC, parse_datetime, parse_drf_datetime, timezones, weekday_name

GetIntegration = Callable[[int], "dict[str, Any] | None"]
MODELS_GEN1 = ["events", "persons", "sessions"]
MODELS_GEN3 = ["events", "persons", "sessions", "hogql"]
WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_MISSING = object()


def _typename(value: Any) -> str:
    return type(value).__name__


def not_a_dict(value: Any, attr: str | None) -> ApiError:
    return validation(f"Invalid data. Expected a dictionary, but got {_typename(value)}.", attr)


# ---------------------------------------------------------------------------------------------- fields


def _char(value: Any, attr: str, max_length: int | None = None, allow_null: bool = False) -> str | None:
    if value is None:
        if allow_null:
            return None
        raise validation("This field may not be null.", attr, "null")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise validation("Not a valid string.", attr, "invalid")
    text = str(value).strip()
    if not text and not allow_null:
        raise validation("This field may not be blank.", attr, "blank")
    if max_length is not None and len(text) > max_length:
        raise validation(f"Ensure this field has no more than {max_length} characters.", attr, "max_length")
    return text


def _bool(value: Any, attr: str) -> bool:
    if value in (True, "true", "True", "TRUE", 1, "1", "yes", "on", "y", "t"):
        return True
    if value in (False, "false", "False", "FALSE", 0, "0", "no", "off", "n", "f"):
        return False
    if value is None:
        raise validation("This field may not be null.", attr, "null")
    raise validation("Must be a valid boolean.", attr, "invalid")


def _int(value: Any, attr: str, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit())
    ):
        raise validation("A valid integer is required.", attr, "invalid")
    number = int(value)
    if number > hi:
        raise validation(f"Ensure this value is less than or equal to {hi}.", attr, "max_value")
    if number < lo:
        raise validation(f"Ensure this value is greater than or equal to {lo}.", attr, "min_value")
    return number


def _datetime(value: Any, attr: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_drf_datetime(value)
    except ValueError:
        raise validation(
            "Datetime has wrong format. Use one of these formats instead: "
            "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
            attr,
            "invalid",
        ) from None


def _str_list(value: Any, attr: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise validation(f'Expected a list of items but got type "{_typename(value)}".', attr, "not_a_list")
    return [_char(v, attr) for v in value]  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- hogql

_SELECT = re.compile(r"^\s*select\s+(?P<cols>.+?)\s+from\s+(?P<table>[\w.]+)(?P<rest>.*)$", re.I | re.S)


def compile_query(query: str, events_schema: bool) -> dict[str, Any]:
    """A tiny stand-in for HogQL compilation: enough to produce `schema` and the common errors."""
    match = _SELECT.match(query)
    if not match:
        raise validation("Failed to parse query", "hogql_query")
    if re.search(r"\bunion\b", query, re.I):
        raise validation("UNIONs are not supported", "hogql_query")
    if events_schema:
        if match["table"] != "events":
            raise validation("Query must SELECT FROM events", "hogql_query")
        if re.search(r"\(\s*select\b", query, re.I):
            raise validation("Subqueries or CTEs are not supported", "hogql_query")
        if re.search(r"\bjoin\b", match["rest"], re.I):
            raise validation("JOINs are not supported", "hogql_query")
    fields, depth, current = [], 0, ""
    for char in match["cols"] + ",":
        if char == "," and depth == 0:
            expr = current.strip()
            alias = re.search(r"\s+as\s+`?(\w+)`?\s*$", expr, re.I)
            expression = expr[: alias.start()].strip() if alias else expr
            fields.append({"expression": expression, "alias": alias.group(1) if alias else expression})
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    return {"fields": fields, "values": {}, "hogql_query": query}


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_FIELD_CHAIN = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
_INTERVAL_PLACEHOLDERS = ("data_interval_start", "data_interval_end")
_SUPPORTED_PLACEHOLDERS = "Only {data_interval_start} and {data_interval_end} are supported in batch export queries"


def check_hogql_model_query(query: str, compiled: dict[str, Any]) -> None:
    """The hogql model's own query rules, in PostHog's order (docs/posthog-api.md, "Exports and
    destinations"): placeholders other than the run's interval bounds, then columns without a name."""
    placeholders = [match.strip() for match in _PLACEHOLDER.findall(query)]
    if any(name == "filters" or not _FIELD_CHAIN.fullmatch(name) for name in placeholders):
        raise validation(f"Unsupported placeholder. {_SUPPORTED_PLACEHOLDERS}", "hogql_query")
    for name in placeholders:
        if name not in _INTERVAL_PLACEHOLDERS:
            raise validation(f"Unknown placeholder '{{{name}}}'. {_SUPPORTED_PLACEHOLDERS}", "hogql_query")
    for field in compiled["fields"]:
        named = field["alias"] != field["expression"] or field["expression"] == "*"
        if not named and not _FIELD_CHAIN.fullmatch(field["expression"]):
            raise validation(
                "Every column in the SELECT clause must be a field or have an alias (e.g. `count() AS event_count`)",
                "hogql_query",
            )


# ---------------------------------------------------------------------------------------------- destination


def _check_config_types(config: dict[str, Any], spec: d.Spec, attr: str, null_checked: bool) -> dict[str, Any]:
    """Coerce string→bool and string→int like the service; otherwise report the first mismatch.

    With `null_checked` (Gen-3) a `null` is a wrong type for a declared str/int/bool key that is not optional,
    so it is refused here, before any integration rule (docs/posthog-api.md, "Exports and destinations")."""
    for key, value in config.items():
        expected = (spec.get(key) or d.BASE_FIELDS.get(key) or ("any", False))[0]
        if value is None and null_checked and key in spec and expected in ("str", "int", "bool"):
            if key not in d.NULLABLE_FIELDS:
                raise validation(f"Configuration has invalid type: got 'NoneType', expected '{expected}'", attr)
        if value is None or expected == "any":
            continue
        ok = {
            "str": isinstance(value, str),
            "int": isinstance(value, int)
            and not isinstance(value, bool)
            or isinstance(value, str)
            and value.strip().lstrip("-").isdigit(),
            "bool": isinstance(value, bool) or value in ("true", "false", "True", "False"),
            "list": isinstance(value, list),
            "dict": isinstance(value, (dict, str, int)),
        }[expected]
        if not ok:
            raise validation(f"Configuration has invalid type: got '{_typename(value)}', expected '{expected}'", attr)
    return config


def _destination(ctx: ValidationContext, value: Any) -> dict[str, Any]:
    gen, instance, partial = ctx.generation, ctx.instance, ctx.partial
    if not isinstance(value, dict):
        raise not_a_dict(value, "destination__non_field_errors")
    types = d.GEN3_TYPES if gen >= 3 else d.GEN1_TYPES
    if "type" not in value:
        if partial:
            raise server_error()  # the nested validation reads `type` (docs/posthog-api.md, "Exports and destinations")
        raise required("destination__type")
    type_ = value["type"]
    if type_ is None:
        raise validation("This field may not be null.", "destination__type", "null")
    if not isinstance(type_, str) or type_ not in types:
        raise invalid_choice(type_, "destination__type")
    if "config" not in value:
        if partial:
            raise server_error()
        raise required("destination__config")
    config = value["config"]
    if config is None:
        raise validation("This field may not be null.", "destination__config", "null")
    if not isinstance(config, dict):
        raise not_a_dict(config, "destination__config")

    integration_key = (
        "integration" if "integration" in value else "integration_id" if "integration_id" in value else None
    )
    integration: Any = _MISSING
    if integration_key:
        raw = value[integration_key]
        if raw is None:
            integration = None
        elif isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit())):
            raise validation(
                f"Incorrect type. Expected pk value, received {_typename(raw)}.",
                f"destination__{integration_key}",
                "incorrect_type",
            )
        else:
            integration = ctx.get_integration(int(raw))
            if integration is None:
                raise validation(
                    f'Invalid pk "{raw}" - object does not exist.', f"destination__{integration_key}", "does_not_exist"
                )

    spec = d.fields_for(gen, type_)
    if spec is None:
        raise server_error()  # no workflow registered for the type: validation crashes (docs/posthog-api.md, "Exports and destinations")
    # Gen-3 checks the config in the nested destination serializer, whose errors DRF files under
    # `non_field_errors` (docs/posthog-api.md, "Exports and destinations").
    config_attr = "destination__non_field_errors" if gen >= 3 else "destination"
    unknown = sorted(k for k in config if k not in spec and k not in d.BASE_FIELDS)
    if unknown:
        raise validation("Configuration has unknown field/s: " + ", ".join(f"'{k}'" for k in unknown), config_attr)
    if not partial:
        for key, (_, is_required) in spec.items():
            if is_required and key not in config:
                raise validation(f"Configuration missing required field: '{key}'", config_attr)
    _check_config_types(config, spec, config_attr, null_checked=gen >= 3)

    # validate_destination
    stored = instance["destination"] if instance else None
    if stored and gen >= 3 and stored["type"] != type_:
        raise validation(
            f"Cannot change destination type from '{stored['type']}' to '{type_}'. Delete this batch "
            "export and create a new one with the new destination type.",
            "destination",
        )
    if gen >= 3 and type_ == "S3":
        raise validation(d.LEGACY_S3_MESSAGE, "destination")
    if gen >= 3 and config.get("legacy_parquet_extension") is True and not _writes_legacy_extension(stored):
        raise validation(d.LEGACY_PARQUET_EXTENSION_MESSAGE, "destination")
    merged = d.deep_merge(stored["config"], config) if stored and stored["type"] == type_ else dict(config)
    stored_integration_id = stored.get("integration") if stored else None
    if gen >= 3 and type_ == "Redshift" and stored_integration_id is not None and integration in (_MISSING, None):
        raise validation(d.REDSHIFT_STICKY_INTEGRATION_MESSAGE, "destination")
    if integration is _MISSING:
        # Gen-3 falls back to the stored integration only for some types; the others need one on every
        # write that sends a destination (docs/posthog-api.md, "Exports and destinations").
        falls_back = gen < 3 or type_ not in d.INTEGRATION_ON_EVERY_WRITE
        integration_id = stored_integration_id if falls_back else None
        integration = ctx.get_integration(integration_id) if integration_id is not None else None
    _validate_destination_rules(ctx, type_, merged, integration)
    return {"type": type_, "config": config, "integration": integration["id"] if integration else None}


def _writes_legacy_extension(stored: dict[str, Any] | None) -> bool:
    """An existing export that already names its Parquet files with the codec (the setting may stay on)."""
    if stored is None:
        return False
    config = stored["config"]
    return (
        config.get("file_format") == "Parquet"
        and bool(config.get("compression"))
        and config.get("legacy_parquet_extension") is not False
    )


def _validate_destination_rules(
    ctx: ValidationContext, type_: str, config: dict[str, Any], integration: dict[str, Any] | None
) -> None:
    gen, creating = ctx.generation, ctx.instance is None
    if gen >= 3 or type_ == "Databricks":
        kind = d.INTEGRATION_KIND.get(type_)
        if kind:
            if integration is None:
                if not (type_ in d.INTEGRATION_CREATE_ONLY and not creating):
                    raise validation(d.INTEGRATION_REQUIRED_MESSAGE[type_], "destination")
            elif integration["kind"] != kind:
                raise validation(
                    d.INTEGRATION_WRONG_KIND_MESSAGE[type_].format(kind=integration["kind"]), "destination"
                )
    if type_ in d.FILE_TYPES:
        if type_ in ("AwsS3", "S3Compatible"):
            empty = [k for k in ("bucket_name", "region", "prefix") if k in config and not str(config[k] or "").strip()]
            if empty:
                raise validation(f"The following inputs are empty: {empty!r}", "destination")
        file_format = config.get("file_format") or "JSONLines"
        if file_format not in d.FILE_FORMATS:
            raise validation(
                f"File format {file_format} is not supported. Supported file formats are {d.FILE_FORMATS!r}",
                "destination",
            )
        compression = config.get("compression")
        if compression is not None and compression not in d.COMPRESSIONS[file_format]:
            raise validation(
                f"Compression {compression} is not supported for file format {file_format}. "
                f"Supported compressions are {d.COMPRESSIONS[file_format]!r}",
                "destination",
            )
    if type_ == "HTTP" and gen >= 3 and config.get("url") not in d.HTTP_ALLOWED_URLS:
        raise validation(f"Invalid destination URL: {config.get('url')}", "destination")
    if type_ == "Redshift":
        if gen >= 3 and integration is not None and not config.get("host"):
            raise validation(
                "A 'host' is required when using an AWS Redshift integration: set it to the cluster "
                "or workgroup endpoint.",
                "destination",
            )
        if config.get("mode") == "COPY":
            if gen >= 3:
                _check_copy_inputs(ctx, config.get("copy_inputs"))
            else:
                _check_copy_inputs_gen1(config.get("copy_inputs"))
    if type_ == "Snowflake" and gen < 3:
        auth = config.get("authentication_type") or "password"
        if auth == "password" and not config.get("password"):
            raise validation("Password is required if authentication type is password", "destination")
        if auth == "keypair" and not config.get("private_key"):
            raise validation("Private key is required if authentication type is key pair", "destination")
    if type_ == "Workflows":
        raise permission_denied("Backfilling Workflows is not enabled for this team.")
    if gen >= 3 and type_ in ("Postgres", "Redshift") and config.get("host") is not None:
        # Last of the rules, as in PostHog's view (docs/posthog-api.md, "Exports and destinations").
        _check_host(config["host"])


def _copy_integration_id(value: Any) -> int | None:
    """The integration id a COPY credential names: an int or a numeric string (stored scalars come back as
    text), never a boolean."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _check_copy_inputs(ctx: ValidationContext, inputs: Any) -> None:
    """Redshift COPY staging inputs, in PostHog's order (docs/posthog-api.md, "Exports and destinations")."""
    if not inputs:
        raise validation("Missing required inputs for 'COPY'", "destination")
    if not isinstance(inputs, dict) or {"s3_bucket", "region_name", "authorization", "bucket_credentials"} - set(
        inputs
    ):
        raise validation("Missing required input for 'COPY'", "destination")
    stored = ((ctx.instance or {}).get("destination") or {}).get("config") or {}
    stored_copy = stored.get("copy_inputs")
    stored_inputs: dict[str, Any] = stored_copy if isinstance(stored_copy, dict) else {}
    bucket_credentials, authorization = inputs["bucket_credentials"], inputs["authorization"]
    ids = {
        "bucket_credentials": _copy_integration_id(bucket_credentials),
        "authorization": _copy_integration_id(authorization),
    }
    for field_name, integration_id in ids.items():
        if (
            ctx.instance is not None
            and integration_id is None
            and _copy_integration_id(stored_inputs.get(field_name)) is not None
        ):
            raise validation(d.COPY_STICKY_MESSAGE.format(field=field_name), "destination")
        if integration_id is None:
            continue
        integration = ctx.get_integration(integration_id)
        if integration is None or integration["kind"] != "aws-s3":
            raise validation(f"'{field_name}' does not reference an AWS S3 integration of this project.", "destination")
    keys = {"aws_access_key_id", "aws_secret_access_key"}
    if ids["bucket_credentials"] is None and (
        not isinstance(bucket_credentials, dict) or keys - set(bucket_credentials)
    ):
        raise validation("Missing required bucket credentials for 'COPY'", "destination")
    if ids["authorization"] is None:
        if isinstance(authorization, dict):
            if keys - set(authorization):
                raise validation("Missing required credentials for 'COPY'", "destination")
        elif isinstance(authorization, str):
            if not authorization.strip():
                raise validation("Missing required IAM role for 'COPY'", "destination")
        else:
            raise validation(
                "Authorization for 'COPY' must be an IAM role ARN, AWS credentials, or an integration ID.",
                "destination",
            )


def _check_copy_inputs_gen1(inputs: Any) -> None:
    """The first generation's COPY checks: present and non-empty values only."""
    if not inputs:
        raise validation("Missing required inputs for 'COPY'", "destination")
    if not isinstance(inputs, dict) or not inputs.get("s3_bucket") or not inputs.get("region_name"):
        raise validation("Missing required input for 'COPY'", "destination")
    if not inputs.get("bucket_credentials"):
        raise validation("Missing required bucket credentials for 'COPY'", "destination")
    if not inputs.get("authorization"):
        raise validation("Missing required credentials for 'COPY'", "destination")


_HOSTNAME_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_BARE_HOSTNAME = re.compile(rf"{_HOSTNAME_LABEL}(?:\.{_HOSTNAME_LABEL})*\.?")
_INTERNAL_SUFFIXES = (
    ".local",
    ".internal",
    ".svc.cluster.local",
    ".cluster.local",
    ".consul",
    ".lan",
    ".home",
    ".corp",
    ".localdomain",
    ".home.arpa",
    ".intranet",
    ".priv",
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _check_host(host: Any) -> None:
    """A Postgres or Redshift host PostHog's servers may reach (docs/posthog-api.md, "Exports and
    destinations"): its form first, then its name and address. PostHog also resolves a name and refuses one
    that resolves nowhere or to an internal address; the sandbox reaches no DNS and takes any other name."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    if isinstance(host, str) and host.strip():
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
    canonical = _canonical_host(host) if isinstance(host, str) else ""
    if ip is None and (not canonical or len(canonical) > 253 or not _BARE_HOSTNAME.fullmatch(canonical)):
        raise validation(d.INVALID_HOST_MESSAGE, "destination")
    if ip is None:
        try:
            ip = ipaddress.ip_address(canonical)
        except ValueError:
            ip = None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    blocked = canonical in ("169.254.169.254", "metadata.google.internal", "localhost", "127.0.0.1", "::1") or any(
        canonical.endswith(suffix) for suffix in _INTERNAL_SUFFIXES
    )
    if ip is not None:
        blocked = (
            blocked
            or any(
                (ip.is_private, ip.is_loopback, ip.is_link_local, ip.is_multicast, ip.is_reserved, ip.is_unspecified)
            )
            or ip in _CGNAT
        )
    if blocked:
        raise validation(d.UNREACHABLE_HOST_MESSAGE, "destination")


def _canonical_host(host: str) -> str:
    try:
        host = host.encode("idna").decode("ascii")
    except ValueError:
        pass
    return host.lower().rstrip(".")


# ---------------------------------------------------------------------------------------------- export


class ValidationContext:
    def __init__(
        self, generation: int, get_integration: GetIntegration, instance: dict[str, Any] | None, partial: bool
    ):
        self.generation = generation
        self.get_integration = get_integration
        self.instance = instance
        self.partial = partial


def validate_export(ctx: ValidationContext, body: Any) -> dict[str, Any]:
    """Validated changes (only the fields present on PATCH). Raises the first ApiError."""
    gen, instance, partial = ctx.generation, ctx.instance, ctx.partial
    if not isinstance(body, dict):
        raise not_a_dict(body, None)
    out: dict[str, Any] = {}

    def present(name: str) -> bool:
        if name in body:
            return True
        if not partial:
            raise required(name)
        return False

    if present("name"):
        out["name"] = _char(body["name"], "name", max_length=256)
    if "model" in body:
        model = body["model"]
        if model is not None and (
            not isinstance(model, str) or model not in (MODELS_GEN3 if gen >= 3 else MODELS_GEN1)
        ):
            raise invalid_choice(model, "model")
        if instance is not None and gen >= 3 and (model or "events") != (instance["model"] or "events"):
            raise validation("Changing models is not supported. Create a new batch export instead.", "model")
        out["model"] = model
    model = out.get("model", instance["model"] if instance else "events") or "events"
    if present("destination"):
        out["destination"] = _destination(ctx, body["destination"])
    if present("interval"):
        interval = body["interval"]
        if interval is None:
            raise validation("This field may not be null.", "interval", "null")
        if not isinstance(interval, str) or interval not in INTERVALS:
            raise invalid_choice(interval, "interval")
        out["interval"] = interval
    if "paused" in body:
        out["paused"] = _bool(body["paused"], "paused")
    for name in ("last_paused_at", "start_at", "end_at"):
        if name in body:
            out[name] = _datetime(body[name], name)
    if "hogql_query" in body and body["hogql_query"] is not None:
        query = _char(body["hogql_query"], "hogql_query") or ""
        if gen >= 3 and model != "hogql":
            raise validation(f"'hogql_query' is only supported for 'hogql' not '{model}' model", "hogql_query")
        out["hogql_query"] = query
        compiled = compile_query(query, events_schema=gen < 3)
        if gen >= 3:
            # The hogql model keeps its query in a source and has no schema (docs/posthog-api.md, "Exports and
            # destinations"); its output columns still name what `primary_key` and `version_key` may use.
            check_hogql_model_query(query, compiled)
            out["_columns"] = [field["alias"] for field in compiled["fields"]]
        else:
            out["schema"] = compiled
    elif gen >= 3 and model == "hogql" and not (instance and instance.get("hogql_query")):
        raise validation("'hogql_query' is required when 'model' is 'hogql'", "hogql_query")
    if "filters" in body:
        out["filters"] = _filters(body["filters"], gen, model)
    if gen >= 3:
        _gen3_fields(ctx, body, out, model)
    # object-level validate
    destination_type = (out.get("destination") or (instance or {}).get("destination") or {}).get("type")
    if destination_type == "HTTP" and model != "events":
        raise validation("HTTP batch exports only support the events model")
    return out


def _filters(value: Any, gen: int, model: str) -> Any:
    if gen < 3 or value is None:
        return value
    if not isinstance(value, list):
        raise validation("'filters' should be an array of filters", "filters")
    for item in value:
        if not isinstance(item, dict):
            raise validation("Each filter must be an object", "filters")
        # Run attributes are named before the type is looked at (docs/posthog-api.md, "Exports and destinations").
        if "data_interval_start" in item or "data_interval_end" in item:
            raise validation(
                "'data_interval_start' and 'data_interval_end' are run attributes and not 'filters'. "
                "Trigger a backfill if you wish to manually control which periods to batch export.",
                "filters",
            )
        if item.get("type") not in ("event", "person", "hogql"):
            raise validation("Each filter must have a 'type' of one of: 'event', 'hogql', 'person'", "filters")
    if value and model != "events":
        raise validation(f"'filters' is only supported for 'events' not '{model}' model", "filters")
    return value


def _gen3_fields(ctx: ValidationContext, body: dict[str, Any], out: dict[str, Any], model: str) -> None:
    instance, partial = ctx.instance, ctx.partial
    if "timezone" in body:
        tz = body["timezone"]
        if tz is not None and (not isinstance(tz, str) or tz not in timezones()):
            raise invalid_choice(tz, "timezone")
        out["timezone"] = tz or "UTC"
    interval_in_body = "interval" in out
    interval = out.get("interval") or (instance["interval"] if instance else None)
    offsets: dict[str, int | None] = {}
    for name, hi in (("offset_day", 6), ("offset_hour", 23)):
        if name in body:
            offsets[name] = _int(body[name], name, 0, hi)
            if offsets[name] is None:
                continue
            if name == "offset_day" and interval != "week":
                raise validation(
                    "offset_day should not be specified for daily intervals"
                    if interval == "day"
                    else "offset_day is not applicable for non-weekly intervals",
                    name,
                )
            if name == "offset_hour" and interval not in ("day", "week"):
                raise validation("offset_hour is not applicable for non-daily/weekly intervals", name)
    for name in ("hogql_modifiers", "primary_key", "version_key"):
        if name in body and body[name] is not None:
            if model != "hogql":
                raise validation(f"'{name}' is only supported for 'hogql' not '{model}' model", name)
            if name == "hogql_modifiers":
                if not isinstance(body[name], dict):
                    raise not_a_dict(body[name], name)
                out[name] = body[name]
            else:
                out[name] = _str_list(body[name], name)
                aliases = set(out.get("_columns") or (instance or {}).get("_columns") or [])
                for column in out[name] or []:
                    if aliases and column not in aliases:
                        raise validation(f"Column '{column}' in '{name}' is not in the query output", name)
    if "incremental_mode" in body:
        mode = body["incremental_mode"]
        if mode not in ("APPEND", "MERGE"):
            raise invalid_choice(mode, "incremental_mode")
        if mode == "MERGE" and not (out.get("primary_key") or (instance or {}).get("primary_key")):
            raise validation("'primary_key' is required when 'incremental_mode' is 'MERGE'", "primary_key")
        out["incremental_mode"] = mode
    # interval_offset (docs/posthog-api.md, "Exports and destinations"): converted only when `interval` is in the same request.
    if offsets and not interval_in_body:
        raise server_error()  # offsets without interval stay unconverted and the save fails (inferred 500)
    if interval_in_body:
        day, hour = offsets.get("offset_day"), offsets.get("offset_hour")
        if interval == "day":
            if "offset_hour" in offsets or not partial:
                out["interval_offset"] = hour * 3600 if hour is not None else None
        elif interval == "week":
            if offsets or not partial:
                out["interval_offset"] = (
                    ((day or 0) * 86400 + (hour or 0) * 3600)
                    if offsets and (day is not None or hour is not None)
                    else None
                )
        else:
            out["interval_offset"] = None


# ---------------------------------------------------------------------------------------------- backfill


def parse_backfill_bounds(
    body: Any, export: dict[str, Any], gen: int, now: datetime, earliest_data: datetime
) -> tuple[datetime | None, datetime | None]:
    """Reference 9.6 steps 2, 4, 5 and 6 (the caller checks the concurrency cap in between)."""
    body = body if isinstance(body, dict) else {}
    start_raw, end_raw = body.get("start_at"), body.get("end_at")
    date_only = gen >= 3 and export["interval"] in ("day", "week")
    start = _parse_bound(start_raw, export, date_only) if start_raw is not None else None
    end = _parse_bound(end_raw, export, date_only) if end_raw is not None else None
    if gen < 3:
        if end is not None and end < earliest_data:
            raise validation(
                "The provided backfill date range contains no data. The earliest possible backfill "
                f"start date is {earliest_data.strftime('%Y-%m-%d %H:%M:%S')}"
            )
        if start is None or start < earliest_data:
            start = earliest_data
    if start is not None and end is not None:
        if start >= end:
            raise validation(
                "The initial backfill datetime 'start_at' happens after 'end_at'"
                if gen < 3
                else "The initial backfill datetime 'start_at' must be before 'end_at'"
            )
        if end > now:
            raise validation(f"The provided 'end_at' ({end.isoformat()}) is in the future")
    if end is None and export["destination"]["type"] not in ("HTTP", "NoOp"):
        raise server_error()  # unreachable service error → 500 (docs/posthog-api.md, "Backfills")
    return start, end


def _parse_bound(raw: Any, export: dict[str, Any], date_only: bool) -> datetime:
    text = raw if isinstance(raw, str) else str(raw)
    if not date_only:
        parsed = parse_datetime(text)
        if parsed is None:
            raise validation(f"Input {text} is not a valid ISO formatted datetime.")
        if parsed.tzinfo is None:
            raise validation(f"Input {text} is naive.")
        return parsed.astimezone(UTC)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        if parse_datetime(text) is not None:
            raise validation(
                f"Input '{text}' is not a valid ISO formatted date. Daily or weekly batch export "
                "backfills expect only the date component, but a time was included."
            ) from None
        raise validation(f"Input '{text}' is not a valid ISO formatted date.") from None
    offset = export.get("interval_offset") or 0
    if export["interval"] == "week":
        expected = WEEKDAYS[offset // 86400]
        actual = weekday_name(day)
        if actual != expected:
            raise validation(
                f"Input {day} is not on the correct day of the week for this batch export. {day} is a "
                f"{actual} but this batch export is configured to run weekly on {expected}."
            )
    hour = (offset % 86400) // 3600
    tz = ZoneInfo(export.get("timezone") or "UTC")
    return datetime.combine(day, dtime(hour=hour), tzinfo=tz).astimezone(UTC)


def parse_unpause_backfill(body: Any, gen: int) -> bool:
    body = body if isinstance(body, dict) else {}
    if "backfill" not in body:
        return False
    if gen < 3:
        return (
            body["backfill"] is not False
        )  # Gen-1 reads the raw value (docs/posthog-api.md, "Exports and destinations")
    return _bool(body["backfill"], "backfill")


__all__ = ["ValidationContext", "validate_export", "parse_backfill_bounds", "parse_unpause_backfill", "compile_query"]
