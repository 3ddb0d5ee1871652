"""Every test of the PostHog files in `inventory.SOURCES` is replayed here or skipped with a reason."""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict

from . import __name__ as PACKAGE
from .inventory import SOURCES


def replayed() -> dict[str, set[str]]:
    """Source file -> names of the tests some replay function stands for."""
    found: dict[str, set[str]] = defaultdict(set)
    package = importlib.import_module(PACKAGE)
    for module_info in pkgutil.iter_modules(package.__path__):
        if not module_info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"{PACKAGE}.{module_info.name}")
        for name, value in vars(module).items():
            source = getattr(value, "replays", None)
            if source is not None and name.startswith("test_"):
                assert name not in found[source], f"{source}::{name} is replayed twice"
                found[source].add(name)
    return found


def test_every_source_test_is_replayed_or_skipped_with_a_reason() -> None:
    found = replayed()
    assert set(found) <= set(SOURCES), f"replays of files not in the inventory: {set(found) - set(SOURCES)}"
    for path, source in SOURCES.items():
        tests, skipped = set(source.tests), set(source.skipped)
        assert len(tests) == len(source.tests), f"{path} lists a test twice"
        assert found[path] <= tests, f"{path}: replays of unknown tests {found[path] - tests}"
        assert skipped <= tests, f"{path}: skipped tests it does not have {skipped - tests}"
        assert not found[path] & skipped, f"{path}: both replayed and skipped {found[path] & skipped}"
        assert found[path] | skipped == tests, f"{path}: neither replayed nor skipped {tests - found[path] - skipped}"
        assert all(reason.strip() for reason in source.skipped.values())
        assert len(source.commit) == 40
