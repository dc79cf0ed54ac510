from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.redis_dsn import InvalidRedisDsn, parse_redis_dsn


def test_defaults() -> None:
    settings = parse_redis_dsn("redis://localhost")
    assert (settings.host, settings.port, settings.database) == ("localhost", 6379, 0)
    assert (settings.username, settings.password, settings.ssl) == (None, None, False)
    assert settings.unix_socket_path is None


def test_host_port_db_in_path() -> None:
    settings = parse_redis_dsn("redis://cache.internal:6380/3")
    assert (settings.host, settings.port, settings.database) == ("cache.internal", 6380, 3)


def test_db_in_query() -> None:
    assert parse_redis_dsn("redis://localhost:6379?db=5").database == 5
    assert parse_redis_dsn("redis://localhost/5?db=5").database == 5


def test_user_and_password_are_percent_decoded() -> None:
    settings = parse_redis_dsn("redis://app%40team:p%40ss%3Aw%2Frd@localhost/1")
    assert (settings.username, settings.password) == ("app@team", "p@ss:w/rd")


def test_password_only() -> None:
    settings = parse_redis_dsn("redis://:secret@localhost")
    assert (settings.username, settings.password) == (None, "secret")


def test_separate_password_is_used_when_the_dsn_has_none() -> None:
    assert parse_redis_dsn("redis://localhost", password="s3").password == "s3"
    assert parse_redis_dsn("redis://:s3@localhost", password="s3").password == "s3"


def test_conflicting_passwords_are_an_error() -> None:
    with pytest.raises(InvalidRedisDsn, match="different passwords"):
        parse_redis_dsn("redis://:one@localhost", password="two")


def test_rediss_is_tls_with_its_options() -> None:
    settings = parse_redis_dsn(
        "rediss://default:pw@redis.example.com:6390/2"
        "?ssl_cert_reqs=none&ssl_ca_certs=/etc/ca%20file.pem&ssl_check_hostname=true"
    )
    assert settings.ssl is True
    assert (settings.host, settings.port, settings.database) == ("redis.example.com", 6390, 2)
    assert (settings.username, settings.password) == ("default", "pw")
    assert settings.ssl_cert_reqs == "none"
    assert settings.ssl_ca_certs == "/etc/ca file.pem"
    assert settings.ssl_check_hostname is True


def test_ipv6_host() -> None:
    settings = parse_redis_dsn("redis://[::1]:6400")
    assert (settings.host, settings.port) == ("::1", 6400)


def test_unix_socket() -> None:
    settings = parse_redis_dsn("unix://:pw@/run/redis/redis%20server.sock?db=4")
    assert settings.unix_socket_path == "/run/redis/redis server.sock"
    assert (settings.database, settings.password) == (4, "pw")


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("http://localhost", "unsupported scheme 'http'"),
        ("localhost:6379", "unsupported scheme"),
        ("redis://localhost:99999", "invalid port"),
        ("redis://localhost:port", "invalid port"),
        ("redis://", "needs a host"),
        ("redis://localhost/abc", "non-negative integer"),
        ("redis://localhost/-1", "non-negative integer"),
        ("redis://localhost/1?db=2", "given twice"),
        ("redis://localhost?timeout=3", "unsupported query parameter"),
        ("redis://localhost?ssl_cert_reqs=none", "TLS options need rediss://"),
        ("redis://localhost?db=1&db=2", "more than once"),
        ("rediss://localhost?ssl_cert_reqs=maybe", "ssl_cert_reqs must be"),
        ("rediss://localhost?ssl_check_hostname=perhaps", "ssl_check_hostname"),
        ("unix://", "needs a socket path"),
        ("unix://host/run/redis.sock", "takes a path, not a host"),
        ("redis://localhost#frag", "fragment"),
    ],
)
def test_bad_dsns_are_rejected_with_the_reason(dsn: str, message: str) -> None:
    with pytest.raises(InvalidRedisDsn, match=message):
        parse_redis_dsn(dsn)


def test_repr_hides_the_password() -> None:
    settings = parse_redis_dsn("redis://user:hunter2@localhost")
    assert "hunter2" not in repr(settings)
    assert "user" in repr(settings)
