"""The one walker for secrets: strip them, collect them, mask them, and redact known values.

Secret destination keys (`SECRET_CONFIG_KEYS`) count wherever they sit under a `config`,
at any depth: they nest (Redshift `copy_inputs.authorization`), so a top-level look would
miss some. Results strip them as PostHog does on read, previews mask them, and every secret
string a caller passed is collected so that no echo (result, error, audit or log line) can
carry it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from tools.destinations import SECRET_CONFIG_KEYS

REDACTED = "[redacted]"
# Objects whose members are destination settings, where secret keys are looked for.
_CONFIG_KEYS = ("config", "copy_inputs", "integration_config")  # the last: batch-export-integration-create's
_DROP = object()


def _walk(value: Any, on_secret: Callable[[Any], Any], in_config: bool) -> Any:
    """A copy of `value` where each secret key's value under a config is `on_secret(value)`
    (dropped when that returns `_DROP`)."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if in_config and key in SECRET_CONFIG_KEYS:
                replaced = on_secret(item)
                if replaced is not _DROP:
                    out[key] = replaced
                continue
            out[key] = _walk(item, on_secret, in_config or key in _CONFIG_KEYS)
        return out
    if isinstance(value, list):
        return [_walk(item, on_secret, in_config) for item in value]
    return value


def strip(value: Any) -> Any:
    """`value` without secret keys under any `config`, as PostHog answers a read."""
    return _walk(value, lambda _: _DROP, in_config=False)


def mask(config: Any, marker: str) -> Any:
    """A destination config (or a part of one) with every secret key's value replaced by `marker`."""
    return _walk(config, lambda _: marker, in_config=True)


def _decoded(value: Any, key: Any = None) -> Any:
    """`value` with each config sent as JSON text (tools/params.py `JsonObject`) read as the object it holds."""
    if isinstance(value, str) and key in _CONFIG_KEYS:
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return _decoded(parsed) if isinstance(parsed, dict) else value
    if isinstance(value, dict):
        return {k: _decoded(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded(v, key) for v in value]
    return value


def collect(arguments: Any) -> set[str]:
    """The secret strings a caller passed (destination config secrets), to scrub from every echo. A config
    sent as JSON text counts too, and so does each secret as it reads inside such text (JSON-escaped)."""
    found: set[str] = set()

    def keep(item: Any) -> Any:
        if isinstance(item, str):
            found.update({item, json.dumps(item)[1:-1]})
        else:
            _walk(item, keep, in_config=True)  # a secret key holding an object: its secret keys count too
        return item

    _walk(_decoded(arguments), keep, in_config=False)
    return found


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """Replace any known secret string (the API key, secret arguments) wherever it appears."""
    needles = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    if not needles:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for needle in needles:
                if needle in item:
                    item = item.replace(needle, REDACTED)
            return item
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)
