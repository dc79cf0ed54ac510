"""Turn a Redis DSN into arq's `RedisSettings`, losing nothing on the way.

arq's own `RedisSettings.from_dsn` does not percent-decode the user name,
password or socket path, ignores unknown query parameters and has no form
for Redis Sentinel; this parser decodes them, accepts the TLS options as
query parameters, reads ``redis+sentinel://`` DSNs into arq's sentinel
settings and rejects anything it would otherwise drop.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from arq.connections import RedisSettings

__all__ = ["InvalidRedisDsn", "RedactedRedisSettings", "parse_redis_dsn"]

SCHEMES = frozenset({"redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel"})
TLS_SCHEMES = frozenset({"rediss", "rediss+sentinel"})
SENTINEL_SCHEMES = frozenset({"redis+sentinel", "rediss+sentinel"})
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_EXAMPLE = "redis+sentinel://host1:26379,host2:26379/mymaster/0"
TLS_OPTIONS = frozenset(
    {"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"}
)
CERT_REQS = frozenset({"required", "optional", "none"})
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class InvalidRedisDsn(ValueError):
    """The DSN cannot be turned into Redis settings; the message says why."""


class RedactedRedisSettings(RedisSettings):
    """`RedisSettings` whose repr never shows the password."""

    def __repr__(self) -> str:
        fields = {**self.__dict__, "password": "**********" if self.password else None}
        return "RedisSettings({})".format(", ".join(f"{k}={v!r}" for k, v in fields.items()))


def parse_redis_dsn(dsn: str, *, password: str | None = None) -> RedactedRedisSettings:
    """Parse ``redis://``, ``rediss://`` (TLS), ``unix://`` and Sentinel DSNs.

    ``redis+sentinel://[user:password@]host1:26379,host2:26379/mymaster/0``
    names the sentinels (port 26379 unless given), the master's service name
    and the database; ``rediss+sentinel://`` talks TLS to the master and its
    replicas. As with arq's `create_pool`, the user name and password are the
    master's and replicas'; the sentinels are asked without them, and without TLS.

    ``password``, when given, is used if the DSN has none; a DSN password that
    differs from it is an error rather than a silent choice.
    """
    try:
        parts = urlsplit(dsn)
    except ValueError as error:  # e.g. an unclosed [ of an IPv6 address
        raise InvalidRedisDsn(f"not a valid URL: {error}") from None
    if parts.scheme not in SCHEMES:
        raise InvalidRedisDsn(
            f"unsupported scheme {parts.scheme!r}: use redis://, rediss://, unix://,"
            " redis+sentinel:// or rediss+sentinel://"
        )
    if parts.fragment:
        raise InvalidRedisDsn("a Redis DSN must not have a #fragment")
    sentinel = parts.scheme in SENTINEL_SCHEMES
    query = _parse_query(parts.query, tls=parts.scheme in TLS_SCHEMES)
    path = parts.path if parts.scheme != "unix" else ""
    if sentinel:
        sentinels = _sentinel_addresses(parts.netloc.rpartition("@")[2])
        master, path = _sentinel_master(parts.path)
    database = _database(path, query)
    username = unquote(parts.username) if parts.username else None
    dsn_password = unquote(parts.password) if parts.password is not None else None
    if dsn_password is not None and password is not None and dsn_password != password:
        raise InvalidRedisDsn("the DSN and the password setting give different passwords")
    settings = RedactedRedisSettings(
        database=database,
        username=username,
        password=dsn_password if dsn_password is not None else password,
        ssl=parts.scheme in TLS_SCHEMES,
    )
    if parts.scheme == "unix":
        if parts.netloc.rpartition("@")[2]:
            raise InvalidRedisDsn("a unix:// DSN takes a path, not a host: unix:///run/redis.sock")
        if not parts.path:
            raise InvalidRedisDsn("a unix:// DSN needs a socket path: unix:///run/redis.sock")
        settings.unix_socket_path = unquote(parts.path)
    elif sentinel:
        settings.host = sentinels
        settings.sentinel = True
        settings.sentinel_master = master
    else:
        try:
            port = parts.port
        except ValueError as error:
            raise InvalidRedisDsn(f"invalid port: {error}") from None
        if port == 0:
            raise InvalidRedisDsn("invalid port: 0 (use 1 to 65535)")
        if not parts.hostname:
            raise InvalidRedisDsn("a redis:// or rediss:// DSN needs a host")
        settings.host = parts.hostname
        settings.port = port if port is not None else DEFAULT_PORT
    _apply_tls(settings, query)
    return settings


def _sentinel_master(path: str) -> tuple[str, str]:
    """The master's service name and what follows it (the database) in ``/mymaster/0``."""
    name, _, database = path.removeprefix("/").partition("/")
    if not name:
        raise InvalidRedisDsn(
            f"a Sentinel DSN needs the master's name as its path: {SENTINEL_EXAMPLE}"
        )
    return unquote(name), database


def _sentinel_addresses(hosts: str) -> list[tuple[str, int]]:
    """``host1:26379,[::1]:26380,host3`` as (host, port) pairs.

    The errors name a sentinel by its place in the list, not its text: in a DSN
    missing its ``@``, that text would be the user name and password.
    """
    if not hosts:
        raise InvalidRedisDsn(f"a Sentinel DSN needs at least one sentinel: {SENTINEL_EXAMPLE}")
    addresses: list[tuple[str, int]] = []
    for number, host in enumerate(hosts.split(","), start=1):
        try:
            parts = urlsplit(f"//{host}")
            port = parts.port
            if port == 0:
                raise ValueError("port 0")
        except ValueError:
            raise InvalidRedisDsn(
                f"sentinel {number} of the DSN has an invalid port or address:"
                " write host:port or [ipv6]:port, with a port from 1 to 65535"
            ) from None
        if not parts.hostname:
            raise InvalidRedisDsn(f"sentinel {number} of the DSN has no host: {SENTINEL_EXAMPLE}")
        address = (parts.hostname, port if port is not None else DEFAULT_SENTINEL_PORT)
        if address in addresses:
            raise InvalidRedisDsn(f"sentinel {number} of the DSN is listed twice")
        addresses.append(address)
    return addresses


def _parse_query(query: str, *, tls: bool) -> dict[str, str]:
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise InvalidRedisDsn("a query parameter is given more than once")
    allowed = {"db"} | (TLS_OPTIONS if tls else set())
    unknown = sorted(set(names) - allowed)
    if unknown:
        hint = "" if tls else " (TLS options need rediss:// or rediss+sentinel://)"
        raise InvalidRedisDsn(
            f"unsupported query parameter(s) {', '.join(unknown)}; allowed: "
            f"{', '.join(sorted(allowed))}{hint}"
        )
    return dict(pairs)


def _database(path: str, query: dict[str, str]) -> int:
    if query.get("db") == "":
        raise InvalidRedisDsn("?db= needs a value (a non-negative integer)")
    path_db = path.strip("/")
    values = {value for value in (path_db, query.get("db")) if value}
    if len(values) > 1:
        raise InvalidRedisDsn("the database is given twice, in the path and in ?db=")
    if not values:
        return 0
    value = values.pop()
    if not value.isdecimal():
        raise InvalidRedisDsn(f"the database must be a non-negative integer, not {value!r}")
    return int(value)


def _apply_tls(settings: RedisSettings, query: dict[str, str]) -> None:
    if "ssl_cert_reqs" in query:
        if query["ssl_cert_reqs"] not in CERT_REQS:
            raise InvalidRedisDsn(f"ssl_cert_reqs must be one of {', '.join(sorted(CERT_REQS))}")
        settings.ssl_cert_reqs = query["ssl_cert_reqs"]
    if "ssl_check_hostname" in query:
        value = query["ssl_check_hostname"].lower()
        if value not in BOOLEANS:
            raise InvalidRedisDsn("ssl_check_hostname must be true or false")
        settings.ssl_check_hostname = BOOLEANS[value]
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        if name in query:
            setattr(settings, name, query[name])
