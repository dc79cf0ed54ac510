"""Baseline workers for the drain benchmark: plain arq, none of the template's layers.

Run with the generated project's venv: `arq bare_worker.BareDefaults`,
`arq bare_worker.BareTuned` or `arq bare_worker.BareSame`, with BENCH_REDIS_URL set (and
BENCH_TUNED for the last two: the JSON that `drain_probe.py tuned-settings` prints for
the generated WorkerSettings). With BENCH_EVENT_LOOP=uvloop, arq runs on uvloop.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from arq.connections import RedisSettings

if os.environ.get("BENCH_EVENT_LOOP") == "uvloop":
    # What the generated worker's settings module does (worker/event_loop.py).
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def ping(ctx: dict[str, Any], message: str = "pong") -> str:
    return message


class BareDefaults:
    """arq's defaults: pickle, poll_delay 0.5 s, max_jobs 10."""

    functions = (ping,)
    redis_settings = RedisSettings.from_dsn(os.environ["BENCH_REDIS_URL"])


class BareTuned:
    """arq's defaults but the throughput settings the generated worker uses.

    arq reads only a settings class's own attributes, so nothing is inherited.
    """

    functions = BareDefaults.functions
    redis_settings = BareDefaults.redis_settings
    _tuned: dict[str, Any] = json.loads(os.environ.get("BENCH_TUNED", "{}"))
    poll_delay = _tuned.get("poll_delay", 0.5)
    max_jobs = _tuned.get("max_jobs", 10)
    queue_read_limit = _tuned.get("queue_read_limit")
    job_timeout = _tuned.get("job_timeout", 300)
    keep_result = _tuned.get("keep_result", 3600)


# BareTuned, plus what else of the generated worker changes arq's own work a job: aborts
# allowed (one more Redis command a job) and, through BENCH_EVENT_LOOP, its event loop.
# The generated worker against it: what its own layers cost (serializer, logs, metrics,
# hooks, wake-up, reconnect). A dict, which arq takes as settings too: BareTuned's own
# attributes, since arq reads only those.
BareSame: dict[str, Any] = {
    **{name: value for name, value in vars(BareTuned).items() if not name.startswith("_")},
    "allow_abort_jobs": BareTuned._tuned.get("allow_abort_jobs", False),
}
