"""Settings an attacker or a typo could give: each is refused at start-up with the fix, nothing half-starts."""

from __future__ import annotations

import pytest

from server.config import MAX_TIMEOUT, ConfigError, Settings

KEY = {"POSTHOG_PERSONAL_API_KEY": "phx_config_test_key"}


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", "0", "-5", str(MAX_TIMEOUT + 1), "twenty"])
def test_a_timeout_that_is_not_a_sane_number_of_seconds_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="POSTHOG_MCP_TIMEOUT must be"):
        Settings.from_env({**KEY, "POSTHOG_MCP_TIMEOUT": value})


@pytest.mark.parametrize(("value", "seconds"), [("7.5", 7.5), (str(MAX_TIMEOUT), MAX_TIMEOUT), ("", 20.0)])
def test_a_sane_timeout_is_kept(value: str, seconds: float) -> None:
    assert Settings.from_env({**KEY, "POSTHOG_MCP_TIMEOUT": value}).timeout == seconds


@pytest.mark.parametrize(
    "host", ["http://posthog.internal:8000", "http://10.0.0.5", "http://[fd00::1]:8000", "http://localhost.example.com"]
)
def test_plain_http_to_another_machine_needs_an_explicit_opt_in(host: str) -> None:
    with pytest.raises(ConfigError, match="POSTHOG_MCP_ALLOW_INSECURE_HOST=true"):
        Settings.from_env({**KEY, "POSTHOG_HOST": host})
    allowed = Settings.from_env({**KEY, "POSTHOG_HOST": host, "POSTHOG_MCP_ALLOW_INSECURE_HOST": "true"})
    assert allowed.host == host


@pytest.mark.parametrize(
    "host", ["http://127.0.0.1:8010", "http://localhost:8000", "http://[::1]:8000", "http://127.0.0.2", "https://x.io"]
)
def test_local_http_and_any_https_need_no_opt_in(host: str) -> None:
    assert Settings.from_env({**KEY, "POSTHOG_HOST": host}).host == host


@pytest.mark.parametrize("token", ["x", "short-token", "a" * 31])
def test_a_short_auth_token_is_refused(token: str) -> None:
    with pytest.raises(ConfigError, match="at least 32") as refused:
        Settings.from_env({**KEY, "POSTHOG_MCP_AUTH_TOKEN": token})
    assert token not in str(refused.value) or len(token) < 3  # the message does not echo the token


def test_a_long_auth_token_is_kept() -> None:
    assert Settings.from_env({**KEY, "POSTHOG_MCP_AUTH_TOKEN": "a" * 32}).auth_token == "a" * 32


def test_http_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            **KEY,
            "POSTHOG_MCP_ALLOWED_HOSTS": "mcp.example.com, proxy.internal",
            "POSTHOG_MCP_ALLOWED_ORIGINS": "https://app.example.com",
            "POSTHOG_MCP_HTTP_STATEFUL": "true",
        }
    )
    assert settings.allowed_hosts == ("mcp.example.com", "proxy.internal")
    assert settings.allowed_origins == ("https://app.example.com",)
    assert settings.http_stateful is True
    assert Settings.from_env(KEY).http_stateful is False


def test_toolsets_from_the_environment_and_the_command_line() -> None:
    from server.cli.commands import build_parser, settings_from

    assert Settings.from_env({**KEY, "POSTHOG_MCP_TOOLSETS": "default, logs"}).toolsets == ("default", "logs")
    assert Settings.from_env({**KEY, "POSTHOG_MCP_TOOLSETS": ""}).toolsets == ()
    args = build_parser().parse_args(["serve", "--toolsets", "all"])
    assert settings_from(args, {**KEY, "POSTHOG_MCP_TOOLSETS": "logs"}).toolsets == ("all",)
