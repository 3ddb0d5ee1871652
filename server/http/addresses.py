"""Host names and addresses: which spellings mean this machine, and one normal form to compare them in.

`127.0.0.2`, `[::1]`, `LOCALHOST` and `0:0:0:0:0:0:0:1` are all this machine; a check that only knows
the strings `127.0.0.1`, `localhost` and `::1` misses them, and a DNS-rebinding page gets through.
"""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
"""The names a local client uses for this machine, in normal form."""


def normal_host(host: str) -> str:
    """Lower case, no brackets, IP addresses in their canonical form (`0:0:0:0:0:0:0:1` -> `::1`)."""
    bare = host.strip().strip("[]").lower()
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return bare


def is_loopback(host: str) -> bool:
    bare = normal_host(host)
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False  # a hostname other than localhost may resolve anywhere


def is_wildcard(host: str) -> bool:
    """0.0.0.0 or ::, which listen on every interface."""
    try:
        return ipaddress.ip_address(normal_host(host)).is_unspecified
    except ValueError:
        return False


def host_of_header(value: str) -> str | None:
    """The host part of a Host header (`name`, `name:port`, `[v6]:port`), in normal form; None if malformed."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        rest = value[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        return normal_host(value[1:end])
    name, colon, port = value.rpartition(":")
    if not colon:
        return normal_host(value)
    if not port.isdigit() or ":" in name:
        return None  # an IPv6 address must be bracketed in a Host header
    return normal_host(name)
