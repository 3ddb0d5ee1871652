"""LangChain: our tools loaded by langchain-mcp-adapters, made OpenAI strict functions by LangChain's own
converter (`convert_to_openai_tool(tool, strict=True)`, which `ChatOpenAI.bind_tools(..., strict=True)`
uses), checked against OpenAI's strict rules, and invoked as LangChain tools with strict-shaped calls.

The adapters need the MCP SDK 1.x, so LangChain runs in its own environment (tests/compat/langchain,
its pyproject and lock) and drives our server over stdio from there: `client.py` lists and converts, then
makes the calls this test builds from the converted schemas (JSON lines over its stdin and stdout).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import PIPE
from typing import Any

import jsonschema

from tests.compat.support import (
    DEFAULT_TOOLS,
    KEYS,
    judged,
    openai_strict_problems,
    server_command,
    strict_arguments,
    targets,
)
from tests.support import SandboxControl

PROJECT = Path(__file__).resolve().parent / "langchain"


@contextmanager
def langchain_client(log: Path) -> Iterator[subprocess.Popen[str]]:
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH: it runs LangChain's environment (tests/compat/langchain)"
    command = [uv, "run", "--quiet", "--locked", "--project", str(PROJECT), "python", str(PROJECT / "client.py")]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": ""}
    with (
        log.open("w") as stderr,
        subprocess.Popen(command, stdin=PIPE, stdout=PIPE, stderr=stderr, text=True, env=env) as client,
    ):
        try:
            yield client
        finally:
            client.kill()


def exchange(client: subprocess.Popen[str], message: dict[str, Any], log: Path) -> dict[str, Any]:
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write(json.dumps(message) + "\n")
    client.stdin.flush()
    line = client.stdout.readline()
    assert line, log.read_text()[-3000:]
    answer: dict[str, Any] = json.loads(line)
    return answer


def test_every_tool_converts_strict_and_answers_a_strict_shaped_call(make_sandbox: Any, tmp_path: Path) -> None:
    sandbox = make_sandbox(generation=3, keys=KEYS)
    control = SandboxControl(sandbox.base_url)
    given = targets(control)
    before = control.state()
    command, args, env = server_command(sandbox.base_url, tmp_path)
    log = tmp_path / "langchain.log"
    with langchain_client(log) as client:
        listing = exchange(client, {"command": command, "args": args, "env": env}, log)
        assert set(listing["tools"]) == DEFAULT_TOOLS
        calls = {}
        for name, forms in listing["tools"].items():
            function = forms["converted"]["function"]
            assert function["strict"] is True and forms["bound"]["function"] == function, name
            parameters = function["parameters"]
            assert openai_strict_problems(parameters) == [], (name, openai_strict_problems(parameters))
            calls[name] = strict_arguments(name, parameters, given[name])
            jsonschema.Draft202012Validator(parameters).validate(calls[name])
        answers = exchange(client, calls, log)
    assert set(answers) == DEFAULT_TOOLS
    problems = [p for name, text in answers.items() if (p := judged(name, text))]
    assert problems == []
    assert control.state() == before, "a strict-shaped call changed something"
    control.close()
