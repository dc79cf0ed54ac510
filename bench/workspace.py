"""What every benchmark part shares: the rendered project, its venv, a private Redis."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import DEFAULT_PACKAGE, DEFAULT_PREFIX, RedisServer, clean_env, free_port

IN_VENV = Path(__file__).resolve().parent / "in_venv"
# The generated app's job routes need a bearer token; post.lua sends this one (BENCH_API_TOKEN).
API_TOKEN = "bench-api-token-0123456789"


@dataclass(frozen=True)
class Workspace:
    project: Path
    venv: Path
    redis: RedisServer
    logs: Path
    metrics_port: int = field(default_factory=free_port)
    package: str = DEFAULT_PACKAGE
    prefix: str = DEFAULT_PREFIX

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process run from the project's venv, as in its image."""
        env = {key: value for key, value in clean_env().items() if not key.startswith(self.prefix)}
        env.update(
            PATH=f"{self.venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            PYTHONPATH=str(IN_VENV),
            BENCH_REDIS_URL=self.redis.url,
            **{
                f"{self.prefix}ARQ_MODE": "production",
                f"{self.prefix}ARQ_QUEUE_URL": self.redis.url,
                f"{self.prefix}API_TOKENS": API_TOKEN,
                # Measured with the worker's metrics on, as it runs by default.
                f"{self.prefix}WORKER_METRICS_PORT": str(self.metrics_port),
            },
        )
        env.update(extra)
        return env
