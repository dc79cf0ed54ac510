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
        ("redis://localhost:0", "invalid port: 0"),
        ("redis://localhost?db=", "needs a value"),
        ("redis+sentinel://s1/mymaster?db=", "needs a value"),
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
        ("redis://[::1", "not a valid URL"),
        ("redis+sentinel://", "at least one sentinel"),
        ("redis+sentinel://:pw@/mymaster", "at least one sentinel"),
        ("redis+sentinel://s1:26379", "needs the master's name"),
        ("redis+sentinel://s1:26379/", "needs the master's name"),
        ("redis+sentinel://s1:26379//0", "needs the master's name"),
        ("redis+sentinel://s1:99999/mymaster", "sentinel 1 of the DSN has an invalid port"),
        ("redis+sentinel://s1,s2:port/mymaster", "sentinel 2 of the DSN has an invalid port"),
        ("redis+sentinel://s1,s2:0/mymaster", "sentinel 2 of the DSN has an invalid port"),
        ("redis+sentinel://s1,,s2/mymaster", "sentinel 2 of the DSN has no host"),
        ("redis+sentinel://s1,s1:26379/mymaster", "sentinel 2 of the DSN is listed twice"),
        ("redis+sentinel://s1/mymaster/1?db=2", "given twice"),
        ("redis+sentinel://s1/mymaster/x", "non-negative integer"),
        ("redis+sentinel://s1/mymaster/0/extra", "non-negative integer"),
        ("redis+sentinel://s1/mymaster?sentinel_master=m", "unsupported query parameter"),
        ("redis+sentinel://s1/mymaster?ssl_cert_reqs=none", r"need rediss:// or rediss\+sentinel"),
        ("rediss+sentinel://s1/m?ssl_cert_reqs=maybe", "ssl_cert_reqs must be"),
        ("redis+sentinel://s1/mymaster#frag", "fragment"),
    ],
)
def test_bad_dsns_are_rejected_with_the_reason(dsn: str, message: str) -> None:
    with pytest.raises(InvalidRedisDsn, match=message):
        parse_redis_dsn(dsn)


def test_repr_hides_the_password() -> None:
    settings = parse_redis_dsn("redis://user:hunter2@localhost")
    assert "hunter2" not in repr(settings)
    assert "user" in repr(settings)


def test_sentinel_dsn() -> None:
    settings = parse_redis_dsn("redis+sentinel://s1.internal:26380,10.0.0.2,[::1]:26381/cache/2")
    assert settings.sentinel is True
    assert settings.host == [("s1.internal", 26380), ("10.0.0.2", 26379), ("::1", 26381)]
    assert (settings.sentinel_master, settings.database, settings.ssl) == ("cache", 2, False)
    assert (settings.username, settings.password) == (None, None)


def test_sentinel_database_defaults_to_0_or_comes_from_the_query() -> None:
    assert parse_redis_dsn("redis+sentinel://s1/mymaster").database == 0
    assert parse_redis_dsn("redis+sentinel://s1/mymaster/").database == 0
    assert parse_redis_dsn("redis+sentinel://s1/mymaster?db=4").database == 4


def test_sentinel_master_name_and_credentials_are_percent_decoded() -> None:
    settings = parse_redis_dsn("redis+sentinel://app%40team:p%40ss%2C@s1:1,s2:2/my%20master/1")
    assert settings.sentinel_master == "my master"
    assert (settings.username, settings.password) == ("app@team", "p@ss,")
    assert settings.host == [("s1", 1), ("s2", 2)]


def test_sentinel_password_from_the_setting() -> None:
    settings = parse_redis_dsn("redis+sentinel://s1/mymaster", password="s3")
    assert settings.password == "s3"
    with pytest.raises(InvalidRedisDsn, match="different passwords"):
        parse_redis_dsn("redis+sentinel://:one@s1/mymaster", password="two")


def test_rediss_sentinel_is_tls_with_its_options() -> None:
    settings = parse_redis_dsn(
        "rediss+sentinel://default:pw@s1:26379,s2:26379/mymaster/3"
        "?ssl_cert_reqs=optional&ssl_ca_certs=/etc/ca.pem&ssl_check_hostname=yes"
    )
    assert (settings.sentinel, settings.ssl) == (True, True)
    assert (settings.ssl_cert_reqs, settings.ssl_ca_certs) == ("optional", "/etc/ca.pem")
    assert settings.ssl_check_hostname is True
    assert (settings.sentinel_master, settings.database) == ("mymaster", 3)


def test_sentinel_errors_and_repr_never_show_the_password() -> None:
    settings = parse_redis_dsn("redis+sentinel://user:hunter2@s1,s2/mymaster")
    assert "hunter2" not in repr(settings)
    assert "user" in repr(settings)
    assert "('s2', 26379)" in repr(settings)
    # Without its @, the credentials read as the first sentinel: the error does not echo them.
    with pytest.raises(InvalidRedisDsn) as error:
        parse_redis_dsn("redis+sentinel://user:hunter2,s2/mymaster")
    assert "hunter2" not in str(error.value)
