"""What PostHog refuses that this server can tell before anything is written.

PostHog checks a destination and a query when a write arrives; when the answer is known beforehand,
the call is refused here instead, so nobody is asked to approve a write that cannot succeed. The rules
and PostHog's own words are in docs/posthog-api.md, "Exports and destinations" (Redshift COPY inputs,
Postgres and Redshift hosts, the hogql model's placeholders) and "Destination tests" (a test step may
not change the destination type). Each refusal names the field, says PostHog's rule (quoting its
message) and the fix.

Only what is certain is refused. Rules newer PostHog added apply where the PostHog is known to be
newer; a rule that needs another read (an integration's kind or host) is left to PostHog when the key
may not read it; PostHog's name resolution is not repeated; and the rule that every selected column be
a field or have an alias is left to PostHog, since telling the two apart needs HogQL's parser.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from tools.declaration import NotPossible
from tools.echo import echoed
from tools.upstream import Upstream, UpstreamError, path_for

Newer = Callable[[], Awaitable[bool]]
"""Whether this PostHog is the newer one (Gen-2 and later), asked only when a newer rule would refuse."""


def asked_once(probe: Newer) -> Newer:
    """`probe`, run at most once: a preview may need the answer for several rules, or for none."""
    known: list[bool] = []

    async def newer() -> bool:
        if not known:
            known.append(await probe())
        return known[0]

    return newer


def known(value: bool) -> Newer:
    """A `Newer` whose answer is already known (an update has read the export)."""

    async def newer() -> bool:
        return value

    return newer


# ---------------------------------------------------------------------------------------------- hogql

_SUPPORTED = "Only {data_interval_start} and {data_interval_end} are supported in batch export queries"
UNSUPPORTED_PLACEHOLDER = f"Unsupported placeholder. {_SUPPORTED}"
INTERVAL_PLACEHOLDERS = ("data_interval_start", "data_interval_end")
_PLACEHOLDER_FIX = (
    "use only {data_interval_start} and {data_interval_end}, which each run fills with its data interval "
    "(e.g. WHERE timestamp >= {data_interval_start} AND timestamp < {data_interval_end})."
)
_IDENTIFIER = r"(?:[A-Za-z_$][\w$]*|`(?:[^`\\]|\\.|``)*`|\"(?:[^\"\\]|\\.|\"\")*\")"
_FIELD_CHAIN = re.compile(rf"{_IDENTIFIER}(?:\s*\.\s*{_IDENTIFIER})*")
_CHAIN_PART = re.compile(_IDENTIFIER)
# Words HogQL reads as constants, not fields: a placeholder of one is an expression.
_CONSTANT_WORDS = frozenset({"true", "false", "null", "inf", "infinity", "nan"})


def hogql_query_problem(query: str) -> str | None:
    """Why PostHog would refuse `query` as a hogql-model query for its placeholders; None if it would not
    (or if this cannot tell without HogQL's parser)."""
    found = _placeholders(query)
    if found is None:
        return None
    unsupported = [text for text, chain in found if chain is None or chain == ["filters"]]
    if unsupported:
        shown = echoed("{" + unsupported[0] + "}")
        return (
            f"hogql_query uses the placeholder {shown}, which PostHog refuses in a batch export query "
            f'("{UNSUPPORTED_PLACEHOLDER}"): {{filters}} and expressions in braces cannot be filled by a run; '
            + _PLACEHOLDER_FIX
        )
    for _, chain in found:
        assert chain is not None
        if chain not in ([INTERVAL_PLACEHOLDERS[0]], [INTERVAL_PLACEHOLDERS[1]]):
            name = echoed("{" + ".".join(chain) + "}")
            return (
                f"hogql_query uses the placeholder {name}, which PostHog does not know in a batch export query "
                f"(\"Unknown placeholder '{name}'. {_SUPPORTED}\"); " + _PLACEHOLDER_FIX
            )
    return None


def _placeholders(query: str) -> list[tuple[str, list[str] | None]] | None:
    """Every `{...}` placeholder of the query, in order: its text, and its field chain (None for an
    expression). None when braces appear where only a parser could tell them apart (template strings,
    HogQLX tags, lambda blocks) or do not balance: the check is then left to PostHog."""
    code = _code_only(query)
    if code is None:
        return None
    found: list[tuple[str, list[str] | None]] = []
    i = 0
    while i < len(code):
        if code[i] in '`"':
            close = _quoted_end(code, i)  # a quoted identifier: its braces are part of a name
            if close is None:
                return None
            i = close + 1
            continue
        if code[i] != "{":
            i += 1
            continue
        end = _matching_brace(code, i)
        if end is None:
            return None
        inner = code[i + 1 : end].strip()
        if not inner or _has_top_level_colon(inner):
            i += 1  # a dict literal ({} or {key: value}); placeholders inside it are PostHog's to find
            continue
        if _FIELD_CHAIN.fullmatch(inner) and inner.lower() not in _CONSTANT_WORDS:
            chain = [_unquoted(part) for part in _CHAIN_PART.findall(inner)]
            found.append((inner, chain))
        else:
            found.append((inner, None))
        i = end + 1
    return found


def _code_only(query: str) -> str | None:
    """The query with comments removed and string literals blanked (quoted identifiers kept), or None
    when it has syntax whose braces are not placeholders."""
    out: list[str] = []
    i, n = 0, len(query)
    while i < n:
        char = query[i]
        if query.startswith(("--", "//"), i):
            newline = query.find("\n", i)
            i = n if newline < 0 else newline
            continue
        if query.startswith("/*", i):
            close = query.find("*/", i + 2)
            if close < 0:
                return None
            out.append(" ")
            i = close + 2
            continue
        if char in "fF" and query.startswith("'", i + 1) and not (out and re.match(r"[\w$]", out[-1])):
            return None  # a template string: its braces are expressions, not placeholders
        if char == "<" and i + 1 < n and (query[i + 1].isalpha() or query[i + 1] == "_"):
            return None  # perhaps a HogQLX tag, whose attributes and children use braces
        if query.startswith("->", i) and query[i + 2 :].lstrip().startswith("{"):
            return None  # a lambda with a block body
        if char in "'`\"":
            end = _quoted_end(query, i)
            if end is None:
                return None
            out.append("''" if char == "'" else query[i : end + 1])
            i = end + 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _quoted_end(text: str, start: int) -> int | None:
    """Where the quoted text opened at `start` closes: a backslash escapes, a doubled quote is one."""
    quote, i = text[start], start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            if text.startswith(quote, i + 1):
                i += 2
                continue
            return i
        i += 1
    return None


def _matching_brace(code: str, start: int) -> int | None:
    depth = 0
    i = start
    while i < len(code):
        char = code[i]
        if char in '`"':
            end = _quoted_end(code, i)
            if end is None:
                return None
            i = end + 1
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _has_top_level_colon(inner: str) -> bool:
    depth = 0
    i = 0
    while i < len(inner):
        char = inner[i]
        if char in '`"':
            end = _quoted_end(inner, i)
            if end is None:
                return True
            i = end + 1
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == ":" and depth == 0:
            return True
        i += 1
    return False


def _unquoted(part: str) -> str:
    if part[:1] in '`"' and len(part) >= 2:
        return part[1:-1]
    return part


# ---------------------------------------------------------------------------------------------- hosts

INVALID_HOST = "Invalid host. Enter a hostname or IP address without credentials, scheme, or path."
UNREACHABLE_HOST = "Could not reach this host. Check that the hostname is correct and reachable from the internet."
HOST_TYPES = ("Postgres", "Redshift")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_BARE_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_BLOCKED_NAMES = frozenset({"169.254.169.254", "metadata.google.internal", "localhost", "127.0.0.1", "::1"})
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

HostVerdict = Literal["invalid", "unreachable"]


def host_verdict(host: Any) -> HostVerdict | None:
    """What PostHog's host check says of `host` before it resolves the name: "invalid" (not a bare
    hostname or IP address), "unreachable" (a local, metadata or internal name or address), or None."""
    if not isinstance(host, str) or not host.strip():
        return "invalid"
    canonical = _canonical(host)
    if _ip(host) is None and (len(canonical) > 253 or not _BARE_HOSTNAME.fullmatch(canonical)):
        return "invalid"
    if canonical in _BLOCKED_NAMES or canonical.endswith(_INTERNAL_SUFFIXES):
        return "unreachable"
    address = _ip(canonical)
    if address is not None and _internal(address):
        return "unreachable"
    return None


def _canonical(host: str) -> str:
    """The form PostHog judges a name in: punycode, lower case, no root dot."""
    try:
        host = host.encode("idna").decode("ascii")
    except ValueError:
        pass
    return host.lower().rstrip(".")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    flags = (address.is_private, address.is_loopback, address.is_link_local, address.is_multicast)
    return any(flags) or address.is_reserved or address.is_unspecified or address in _CGNAT


def host_problem(host: Any, *, stored: bool) -> str | None:
    """Why PostHog refuses this destination host, naming the field and the fix; None if it does not."""
    verdict = host_verdict(host)
    if verdict is None:
        return None
    field = "The export's stored destination.config.host" if stored else "destination.config.host"
    send = "send destination.config.host with" if stored else "send"
    if verdict == "invalid":
        # Not echoed: a value of the wrong shape may be a connection string with a password in it.
        return (
            f"{field} is not a bare hostname or IP address, and PostHog refuses it "
            f'("{INVALID_HOST}"); {send} only the database\'s hostname or IP address (e.g. db.example.com), '
            "without scheme, user, password or path; the port goes in destination.config.port."
        )
    return (
        f"{field} {echoed(repr(host))} is a local, metadata or internal address that "
        f'PostHog will not connect to ("{UNREACHABLE_HOST}"); {send} the database\'s public hostname or IP '
        "address, one PostHog's servers reach over the internet."
    )


# ---------------------------------------------------------------------------------------------- Redshift COPY

COPY_INPUTS = ("s3_bucket", "region_name", "authorization", "bucket_credentials")
_CREDENTIAL_FIELDS = ("bucket_credentials", "authorization")
_AWS_KEYS = ("aws_access_key_id", "aws_secret_access_key")
_COPY = "destination.config.copy_inputs"
_COPY_SHAPE = (
    "s3_bucket, region_name, authorization (an IAM role ARN, AWS credentials or an aws-s3 integration id) and "
    "bucket_credentials (AWS credentials or an aws-s3 integration id)"
)


def copy_integration_id(value: Any) -> int | None:
    """The integration id a COPY credential names: an int or a string of digits (PostHog stores scalars
    as text), never a boolean."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def copy_inputs_missing(config: dict[str, Any]) -> str | None:
    """The COPY rules every PostHog generation has: with mode COPY, copy_inputs and its four inputs
    must be there. `config` is the whole config PostHog will hold (an update's merged with the stored)."""
    if config.get("mode") != "COPY":
        return None
    inputs = config.get("copy_inputs", {})
    if not inputs:
        return (
            f"{_COPY} is required with destination.config.mode COPY, and PostHog refuses a COPY export without it "
            f"(\"Missing required inputs for 'COPY'\"); send copy_inputs with {_COPY_SHAPE}, or use mode INSERT."
        )
    missing = [key for key in COPY_INPUTS if key not in inputs] if isinstance(inputs, dict) else list(COPY_INPUTS)
    if missing:
        return (
            f"{_COPY} lacks {', '.join(missing)}: PostHog needs all of {', '.join(COPY_INPUTS)} for mode COPY "
            f"(\"Missing required input for 'COPY'\"); add them ({_COPY_SHAPE})."
        )
    return None


def merged_config(stored: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The config PostHog holds after a PATCH: objects merged key by key, anything else replaced."""
    merged = dict(stored)
    for key, value in sent.items():
        before = merged.get(key)
        merged[key] = merged_config(before, value) if isinstance(before, dict) and isinstance(value, dict) else value
    return merged


class IntegrationReader:
    """An integration of the project as PostHog shows it, read once per call and id.

    `read` answers the integration, "absent" when the project has none with that id, or None when it
    cannot be read (the key lacks integration:read, or PostHog did not answer): then the rule that
    needed it is left to PostHog.
    """

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream
        self._seen: dict[int, dict[str, Any] | Literal["absent"] | None] = {}

    async def read(self, integration_id: int) -> dict[str, Any] | Literal["absent"] | None:
        if integration_id not in self._seen:
            self._seen[integration_id] = await self._fetch(integration_id)
        return self._seen[integration_id]

    async def _fetch(self, integration_id: int) -> dict[str, Any] | Literal["absent"] | None:
        try:
            answer = await self._upstream.request("GET", path_for("integrations/{id}/", id=integration_id))
        except UpstreamError as error:
            return "absent" if error.status == 404 else None
        return answer if isinstance(answer, dict) else None


async def copy_inputs_problem(
    config: dict[str, Any],
    stored: dict[str, Any],
    *,
    updating: bool,
    newer: Newer,
    integrations: IntegrationReader,
) -> str | None:
    """Why PostHog refuses this Redshift config's COPY inputs, in PostHog's order; None if it would not
    (or if this cannot tell). `config` is the merged config, `stored` the export's as PostHog shows it
    ({} for a new export), whose secret keys PostHog leaves out."""
    problem = copy_inputs_missing(config)
    if problem or config.get("mode") != "COPY":
        return problem
    # The rest are newer PostHog's rules: whether this PostHog is newer is asked only when one refuses.
    problem = await _newer_copy_problem(config["copy_inputs"], stored, updating=updating, integrations=integrations)
    return problem if problem and await newer() else None


async def _newer_copy_problem(
    inputs: dict[str, Any], stored: dict[str, Any], *, updating: bool, integrations: IntegrationReader
) -> str | None:
    """The COPY rules newer PostHog added, in its order: credentials that use an integration stay so, an
    integration id names an aws-s3 integration of the project, and inline credentials are complete."""
    stored_copy = stored.get("copy_inputs")
    stored_inputs: dict[str, Any] = stored_copy if isinstance(stored_copy, dict) else {}
    ids = {field: copy_integration_id(inputs[field]) for field in _CREDENTIAL_FIELDS}
    for field in _CREDENTIAL_FIELDS:
        was_id = copy_integration_id(stored_inputs.get(field))
        if updating and ids[field] is None and was_id is not None:
            return (
                f"{_COPY}.{field} uses integration {was_id} and cannot become inline credentials: PostHog refuses "
                f"the switch (\"Cannot switch '{field}' from an integration to inline credentials. Send a different "
                'integration ID to swap, or omit the field to keep the current one."); send the id of another '
                f"aws-s3 integration to swap, or leave {field} out to keep integration {was_id}."
            )
        integration_id = ids[field]
        if integration_id is None:
            continue
        found = await integrations.read(integration_id)
        if found == "absent" or (isinstance(found, dict) and found.get("kind") != "aws-s3"):
            what = (
                "no integration of this project"
                if found == "absent"
                else f"a {echoed(str(found.get('kind')))} integration"
            )
            return (
                f"{_COPY}.{field} {integration_id} is {what}, and PostHog takes only an aws-s3 integration of this "
                f"project there (\"'{field}' does not reference an AWS S3 integration of this project.\"); send the "
                "id of an aws-s3 integration of this project (an AwsS3 export's destination.integration is one)."
            )

    def hidden(field: str) -> bool:
        # PostHog leaves secret keys out of what it shows, so a stored object may hold keys not seen here.
        return isinstance(stored_inputs.get(field), dict) and isinstance(inputs[field], dict)

    credentials = inputs["bucket_credentials"]
    if ids["bucket_credentials"] is None and not (
        isinstance(credentials, dict) and (hidden("bucket_credentials") or set(_AWS_KEYS) <= set(credentials))
    ):
        return (
            f"{_COPY}.bucket_credentials must be an aws-s3 integration id or an object with aws_access_key_id and "
            f"aws_secret_access_key (\"Missing required bucket credentials for 'COPY'\"); send one of those."
        )
    authorization = inputs["authorization"]
    if ids["authorization"] is not None:
        return None
    if isinstance(authorization, dict):
        missing = [key for key in _AWS_KEYS if key not in authorization]
        if missing and not hidden("authorization"):
            return (
                f'{_COPY}.authorization, as AWS credentials, lacks {", ".join(missing)} ("Missing required '
                "credentials for 'COPY'\"); add it, or send an IAM role ARN or an aws-s3 integration id instead."
            )
    elif isinstance(authorization, str):
        if not authorization.strip():
            return (
                f"{_COPY}.authorization is blank (\"Missing required IAM role for 'COPY'\"); send the ARN of an IAM "
                "role attached to the cluster, AWS credentials, or an aws-s3 integration id."
            )
    else:
        return (
            f"{_COPY}.authorization is {type(authorization).__name__ if authorization is not None else 'null'}, "
            "and PostHog refuses it (\"Authorization for 'COPY' must be an IAM role ARN, AWS credentials, or an "
            'integration ID."); send one of those.'
        )
    return None


# ---------------------------------------------------------------------------------------------- destinations


async def refuse_destination(
    upstream: Upstream,
    dest_type: str,
    sent: dict[str, Any],
    stored: dict[str, Any],
    *,
    integration_id: int | None,
    updating: bool,
    newer: Newer,
) -> None:
    """Raise NotPossible when PostHog would refuse this destination for its COPY inputs or its host.

    `sent` is the config the write carries, `stored` the export's config as PostHog shows it ({} on a
    create, or when the type changes), `integration_id` the integration the write names (an update
    sends the stored one again).
    """
    if dest_type not in HOST_TYPES:
        return
    integrations = IntegrationReader(upstream)
    config = merged_config(stored, sent)
    if dest_type == "Redshift":
        problem = await copy_inputs_problem(config, stored, updating=updating, newer=newer, integrations=integrations)
        if problem:
            raise NotPossible(problem)
    # PostHog checks the host last, and the integration's host when the integration holds one.
    from_caller = "host" in sent
    host = config.get("host")
    if host is None or host_verdict(host) is None:
        return
    if integration_id is not None:
        if dest_type == "Postgres":
            return  # a postgresql integration always holds the host PostHog checks instead
        found = await integrations.read(integration_id)
        if not isinstance(found, dict) or (found.get("config") or {}).get("host") is not None:
            return
    if await newer():
        problem = host_problem(host, stored=not from_caller)
        if problem:
            raise NotPossible(problem)


# ---------------------------------------------------------------------------------------------- test steps


def type_change(old: Any, new: Any, *, by_posthog: bool) -> str:
    """Why a test step of another destination type than its export's is refused. Newer PostHog refuses it
    itself; with older PostHog this server does, since the step would carry the export's stored
    credentials to a destination of another type."""
    why = (
        'and PostHog refuses a test step that changes it ("Cannot change destination type from '
        f"'{old}' to '{new}'. Delete this batch export and create a new one with the new destination type.\")"
        if by_posthog
        else "and a test step only tries config keys on the export's stored destination"
    )
    return (
        f"destination.type {new} is not the export's own ({old}), {why}; send destination.type {old} (or leave "
        f"destination out), or test a {new} destination with batch-export-test-step-new."
    )
