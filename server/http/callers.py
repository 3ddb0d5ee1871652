"""Named bearer tokens: who a static token belongs to, so audit and log lines can name the caller.

Operators list their callers in a file (POSTHOG_MCP_AUTH_TOKENS_FILE), one `name: token` per line
(`#` starts a comment) or one JSON object `{"name": "token", ...}`. The single
POSTHOG_MCP_AUTH_TOKEN still works and names its caller "default". Only the names ever leave
this module: tokens are kept as SHA-256 digests and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.config import MIN_AUTH_TOKEN_CHARS, ConfigError

log = logging.getLogger(__name__)

DEFAULT_CALLER = "default"
MIN_TOKEN_LENGTH = MIN_AUTH_TOKEN_CHARS
# A name goes into every audit and log line and into metric-free Redis keys: keep it plain.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class NamedTokens:
    """The static tokens this server accepts, each with the caller name it stands for."""

    entries: tuple[tuple[str, bytes], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.entries)

    def caller_for(self, presented: str) -> str | None:
        """The name of the caller whose token this is, or None.

        Every entry is compared, match or not, and digests have one length, so the time taken
        says nothing about which token (or how much of one) a guess got right.
        """
        digest = _digest(presented)
        found = None
        for name, expected in self.entries:
            if hmac.compare_digest(digest, expected):
                found = name
        return found

    @classmethod
    def build(cls, pairs: Iterable[tuple[str, str]], source: str) -> NamedTokens:
        """Check every pair (name plain, token long, neither repeated) and keep digests only."""
        entries: list[tuple[str, bytes]] = []
        seen_names: set[str] = set()
        seen_digests: dict[bytes, str] = {}
        for name, token in pairs:
            if not NAME_PATTERN.match(name):
                raise ConfigError(
                    f"{source}: caller name {name[:40]!r} is not allowed: use letters, digits and . _ @ - "
                    "(up to 64 characters, starting with a letter or digit)."
                )
            if name in seen_names:
                raise ConfigError(f"{source}: caller name {name!r} appears twice; give every caller its own name.")
            if len(token) < MIN_TOKEN_LENGTH:
                raise ConfigError(
                    f"{source}: the token of caller {name!r} is {len(token)} characters; use at least "
                    f"{MIN_TOKEN_LENGTH} random characters (for example: openssl rand -hex 32)."
                )
            digest = _digest(token)
            if digest in seen_digests:
                raise ConfigError(
                    f"{source}: callers {seen_digests[digest]!r} and {name!r} have the same token; "
                    "give every caller its own token, or the audit trail cannot tell them apart."
                )
            seen_names.add(name)
            seen_digests[digest] = name
            entries.append((name, digest))
        return cls(tuple(entries))


def _members(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return pairs


def parse_tokens_file(text: str, source: str) -> list[tuple[str, str]]:
    """The `(name, token)` pairs of a tokens file, JSON object or `name: token` lines."""
    if text.lstrip().startswith("{"):
        try:
            # Every member as it is written: a dict would keep the last of two equal names and drop a token unseen.
            members = json.loads(text, object_pairs_hook=_members)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{source} is not valid JSON (line {error.lineno}): {error.msg}.") from None
        if not isinstance(members, list) or not all(isinstance(token, str) for _, token in members):
            raise ConfigError(f'{source} must be one JSON object of "name": "token" strings.')
        return [(str(name).strip(), token.strip()) for name, token in members]
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, token = line.partition(":")
        if not colon or not token.strip():
            # The line may be a bare token: never echo it.
            raise ConfigError(f"{source} line {number}: expected 'name: token' (a caller name, a colon, its token).")
        pairs.append((name.strip(), token.strip()))
    return pairs


def token_values(tokens_file: Path | None) -> list[str]:
    """The raw tokens of the file, for the log redactor only; a broken file yields none (start-up reports it)."""
    if tokens_file is None:
        return []
    try:
        return [token for _, token in parse_tokens_file(tokens_file.read_text(encoding="utf-8"), "tokens file")]
    except (OSError, UnicodeDecodeError, ConfigError):
        return []


def load_tokens(tokens_file: Path | None, single_token: str | None) -> NamedTokens:
    """Every static token the operator configured: the tokens file, plus POSTHOG_MCP_AUTH_TOKEN as "default"."""
    pairs: list[tuple[str, str]] = []
    source = "POSTHOG_MCP_AUTH_TOKENS_FILE"
    if tokens_file is not None:
        source = f"POSTHOG_MCP_AUTH_TOKENS_FILE ({tokens_file})"
        try:
            text = tokens_file.read_text(encoding="utf-8")
            mode = tokens_file.stat().st_mode
        except OSError as error:
            raise ConfigError(f"Cannot read {source}: {error.strerror}.") from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            log.warning("%s is readable by other users; chmod 600 it.", source)
        pairs = parse_tokens_file(text, source)
        if not pairs:
            raise ConfigError(f"{source} names no caller; add lines like 'ci: <token>'.")
    if single_token:
        if any(name == DEFAULT_CALLER for name, _ in pairs):
            raise ConfigError(
                f"{source} names a caller {DEFAULT_CALLER!r}, the name POSTHOG_MCP_AUTH_TOKEN's caller has; "
                "rename it in the file."
            )
        if len(single_token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"POSTHOG_MCP_AUTH_TOKEN is {len(single_token)} characters; use at least {MIN_TOKEN_LENGTH} random "
                "characters (for example: openssl rand -hex 32)."
            )
        pairs.append((DEFAULT_CALLER, single_token))
    return NamedTokens.build(pairs, source)
