"""The MCP Registry entry (server.json): generated, valid against the registry's published schema, and
naming the package as it is built (name, version, settings)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from server import __version__
from server.cli.bundle import REGISTRY_NAME, REGISTRY_SCHEMA, SERVER_JSON_PATH, build_server_json, render_server_json

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "tests" / "registry" / "server.schema.json"
SCHEMA_SHA256 = "3fba09590c99f61735d234822279f4223fab9e300c0a81e81c91ab62a4114de0"


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_vendored_schema_is_the_published_2025_12_11_one() -> None:
    assert hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest() == SCHEMA_SHA256
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$id"] == REGISTRY_SCHEMA
    jsonschema.Draft7Validator.check_schema(schema)


def test_server_json_is_generated() -> None:
    assert SERVER_JSON_PATH.read_text() == render_server_json(), (
        "server.json is stale: run 'uv run python -m server.cli.bundle --write'"
    )


def test_server_json_is_valid_against_the_registry_schema() -> None:
    entry = json.loads(SERVER_JSON_PATH.read_text())
    errors = sorted(validator().iter_errors(entry), key=str)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    assert entry["$schema"] == REGISTRY_SCHEMA


@pytest.mark.parametrize(
    ("break_it", "complaint"),
    [
        (lambda e: e.pop("version"), "'version' is a required property"),
        (lambda e: e.update(description="x" * 101), "is too long"),
        (lambda e: e.update(name="posthog-batch-exports-mcp"), "does not match"),
        (lambda e: e["packages"][0].pop("transport"), "'transport' is a required property"),
        (lambda e: e["packages"][0].update(version="latest"), "should not be valid"),
    ],
)
def test_the_schema_check_is_not_a_rubber_stamp(break_it: Any, complaint: str) -> None:
    entry = copy.deepcopy(build_server_json())
    break_it(entry)
    messages = [error.message for error in validator().iter_errors(entry)]
    assert any(complaint in message for message in messages), messages


def test_the_package_is_the_one_pyproject_builds() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entry = json.loads(SERVER_JSON_PATH.read_text())
    (package,) = entry["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == project["name"]
    assert package["version"] == entry["version"] == project["version"] == __version__
    assert package["runtimeHint"] == "uvx" and package["transport"] == {"type": "stdio"}
    assert project["urls"]["Repository"] == entry["repository"]["url"]
    # The command uvx runs is the package's script, and without a command it serves over stdio.
    assert project["scripts"][project["name"]] == "server.cli:main"


def test_settings_are_read_by_the_server_and_only_the_key_is_secret() -> None:
    entry = json.loads(SERVER_JSON_PATH.read_text())
    variables = {v["name"]: v for v in entry["packages"][0]["environmentVariables"]}
    config_source = (ROOT / "server" / "config.py").read_text()
    for name in variables:
        assert f'"{name}"' in config_source, f"{name} is not read by server/config.py"
    assert variables["POSTHOG_PERSONAL_API_KEY"]["isSecret"] is True
    assert variables["POSTHOG_PERSONAL_API_KEY"]["isRequired"] is True
    assert [n for n, v in variables.items() if v["isSecret"]] == ["POSTHOG_PERSONAL_API_KEY"]
    assert not [n for n, v in variables.items() if v["isRequired"] and n != "POSTHOG_PERSONAL_API_KEY"]


def test_readme_carries_the_registry_name_pypi_shows() -> None:
    readme = (ROOT / "README.md").read_text()
    names = re.findall(r"<!-- mcp-name: (\S+) -->", readme)
    assert names == [REGISTRY_NAME]
    assert json.loads(SERVER_JSON_PATH.read_text())["name"] == REGISTRY_NAME
