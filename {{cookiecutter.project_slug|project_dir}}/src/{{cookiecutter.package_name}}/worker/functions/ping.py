"""The smallest job: returns its message. Useful to check a worker end to end."""

from __future__ import annotations

from typing import Any


async def ping(ctx: dict[str, Any], message: str = "pong") -> str:
    return message
