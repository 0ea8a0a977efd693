"""Settings: defaults < YAML file < GATEWAY_* environment; clear, located errors."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway import config as config_module
from gateway.config import Settings, load_settings, split_listen
from gateway.errors import ConfigError


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return str(path)


def test_defaults():
    settings = load_settings(None, env={})
    assert settings == Settings()
    assert settings.pg_listen == "127.0.0.1:6432" and settings.pg_address == ("127.0.0.1", 6432)
    assert settings.http_listen == "127.0.0.1:8080"
    assert settings.policy == "policies/colorado-dmv.yaml"
    assert settings.requesters == "policies/requesters.example.yaml"
    assert settings.audit_path == "./gateway-audit/requests.jsonl"
    assert settings.audit_fsync_interval_ms == 2
    assert settings.require_tls is False and not settings.tls_enabled
    assert settings.backend_dsn is None


def test_file_then_environment(tmp_path):
    path = _write(
        tmp_path,
        "backend_dsn: postgresql://gw:pw@127.0.0.1:5432/dmv\n"
        "pg_listen: 0.0.0.0:7432\n"
        "http_listen: 127.0.0.1:9000\n"
        "pool_size: 4\n"
        "policy: my-policy.yaml\n"
        "audit_path: /var/log/gw/requests.jsonl\n",
    )
    from_file = load_settings(path, env={})
    assert from_file.pg_listen == "0.0.0.0:7432" and from_file.pool_size == 4
    assert from_file.policy == str(tmp_path / "my-policy.yaml")  # relative to the file's folder
    assert from_file.audit_path == "/var/log/gw/requests.jsonl"
    env = {
        "GATEWAY_PG_LISTEN": "127.0.0.1:6500",
        "GATEWAY_POOL_SIZE": "12",
        "GATEWAY_POLICY": "other.yaml",
        "GATEWAY_REQUIRE_TLS": "",  # empty: ignored
        "GATEWAY_INSTANCE_NAME": "east-1",
        "GATEWAY_AUDIT_FSYNC_INTERVAL_MS": "0.5",
        "UNRELATED": "x",
    }
    both = load_settings(path, env=env)
    assert both.pg_listen == "127.0.0.1:6500"
    assert both.pool_size == 12
    assert both.policy == "other.yaml"  # environment paths stay as given (current folder)
    assert both.http_listen == "127.0.0.1:9000"  # from the file, not overridden
    assert both.backend_dsn == "postgresql://gw:pw@127.0.0.1:5432/dmv"
    assert both.instance_name == "east-1" and both.audit_fsync_interval_ms == 0.5


def test_spec_environment_variables(tmp_path):
    env = {
        "GATEWAY_BACKEND_DSN": "postgresql://u:p@h:1/d",
        "GATEWAY_PG_LISTEN": "[::1]:6432",
        "GATEWAY_HTTP_LISTEN": "0.0.0.0:80",
        "GATEWAY_POLICY": "p.yaml",
        "GATEWAY_REQUESTERS": "r.yaml",
        "GATEWAY_AUDIT_PATH": "/tmp/a.jsonl",
        "GATEWAY_TLS_CERT": "c.pem",
        "GATEWAY_TLS_KEY": "k.pem",
        "GATEWAY_REQUIRE_TLS": "true",
    }
    s = load_settings(None, env=env)
    assert (s.backend_dsn, s.http_listen, s.policy, s.requesters, s.audit_path) == (
        "postgresql://u:p@h:1/d", "0.0.0.0:80", "p.yaml", "r.yaml", "/tmp/a.jsonl",
    )  # fmt: skip
    assert s.pg_address == ("::1", 6432)
    assert s.tls_enabled and s.require_tls


def test_config_path_from_environment(tmp_path):
    path = _write(tmp_path, "instance_name: from-file\n")
    assert load_settings(None, env={"GATEWAY_CONFIG": path}).instance_name == "from-file"


@pytest.mark.parametrize(
    ("text", "env", "words"),
    [
        ("pool_size: lots\n", {}, "gateway.yaml:1: pool_size: Input should be a valid integer"),
        ("pool_size: 0\n", {}, "pool_size: Input should be greater than or equal to 1"),
        ("\n\nlisten_port: 5\n", {}, "gateway.yaml:3: unknown setting 'listen_port'"),
        ("pg_listen: localhost\n", {}, "expected host:port"),
        ("http_listen: 1.2.3.4:99999\n", {}, "out of range"),
        ("tls_cert: c.pem\n", {}, "set both or neither"),
        ("require_tls: true\n", {}, "require_tls needs tls_cert"),
        ("", {"GATEWAY_POOL_SIZE": "x"}, "environment GATEWAY_POOL_SIZE: pool_size"),
        ("", {"GATEWAY_REQUIRE_TLS": "maybe"}, "GATEWAY_REQUIRE_TLS"),
        ("pg_listen: [1, 2\n", {}, "invalid YAML"),
        ("- a\n", {}, "mapping"),
    ],
)
def test_errors(tmp_path, text, env, words):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env)
    assert words in str(info.value), str(info.value)


def test_dsn_error_does_not_echo_the_password():
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"GATEWAY_BACKEND_DSN": "mysql://u:sekrit@h/d"})
    assert "sekrit" not in str(info.value) and "GATEWAY_BACKEND_DSN" in str(info.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings("/nonexistent/gateway.yaml", env={})


def test_settings_are_frozen():
    with pytest.raises(ValidationError, match="frozen"):
        Settings().pool_size = 3  # type: ignore[misc]


def test_split_listen():
    assert split_listen("[::]:8080") == ("::", 8080)
    with pytest.raises(ValueError):
        split_listen(":80")


def test_doctests():
    result = doctest.testmod(config_module)
    assert result.failed == 0 and result.attempted > 0
