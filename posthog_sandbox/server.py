"""Run the sandbox in-process: uvicorn on loopback in a daemon thread, silent on stdout."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import uvicorn

from .app import create_app
from .config import SandboxConfig

_LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
    "loggers": {
        name: {"handlers": ["stderr"], "level": "WARNING", "propagate": False}
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    },
}


class RunningSandbox:
    """A sandbox served in a background thread. Use as a context manager or call `close()`."""

    def __init__(
        self,
        config: SandboxConfig,
        host: str,
        port: int,
        server: uvicorn.Server,
        thread: threading.Thread,
        sock: socket.socket,
        app: Any,
    ):
        self.config = config
        self.host = host
        self.port = port
        self.base_url = f"http://{host}:{port}"
        self.app = app
        self._server = server
        self._thread = thread
        self._sock = sock

    def close(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2.0)
        try:
            self._sock.close()
        except OSError:
            pass
        self.app.state.sandbox.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_sandbox(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0
) -> RunningSandbox:
    """Start serving and return once the sandbox accepts connections (or raise after `timeout`)."""
    config = config or SandboxConfig()
    app = create_app(config)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted sockets (otherwise Nagle adds ~40 ms per response)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    actual_port = sock.getsockname()[1]
    uv_config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        log_config=_LOG_CONFIG,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
    )
    server = uvicorn.Server(uv_config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"posthog-sandbox-{actual_port}"
    )
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"sandbox did not start on {host}:{actual_port} within {timeout} s")
        time.sleep(0.01)
    running = RunningSandbox(config, host, actual_port, server, thread, sock, app)
    logging.getLogger(__name__).debug("sandbox serving on %s", running.base_url)
    return running
