"""Nightly cron job: forget synced invoices older than the retention period."""

from __future__ import annotations

import logging
import time
from typing import Any

from arq.connections import ArqRedis

from ...config import Config
from .sync_invoice import SYNCED_INDEX, invoice_key

__all__ = ["cleanup_synced_invoices"]

logger = logging.getLogger(__name__)
BATCH = 500


async def cleanup_synced_invoices(ctx: dict[str, Any]) -> int:
    """Delete invoices synced before the cut-off; return how many went."""
    redis: ArqRedis = ctx["redis"]
    config: Config = ctx["config"]
    cutoff = time.time() - config.invoice_retention_days * 86400
    removed = 0
    while ids := await redis.zrangebyscore(SYNCED_INDEX, "-inf", cutoff, start=0, num=BATCH):
        names = [raw.decode() for raw in ids]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(*(invoice_key(name) for name in names))
            pipe.zrem(SYNCED_INDEX, *names)
            await pipe.execute()
        removed += len(names)
    logger.info(
        "removed %d synced invoices older than %d days", removed, config.invoice_retention_days
    )
    return removed
