"""The invoice-sync pattern: fetch a record from an upstream API, store it idempotently.

Run it twice and the stored state is the same; the API enqueues it with
``_job_id=sync-invoice-<id>`` so a second request while one runs is refused.
Upstream outages and 5xx answers are retried with backoff; a missing invoice
fails at once.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import httpx
from arq.connections import ArqRedis

from ..retries import retry_or_raise

__all__ = ["InvoiceNotFound", "UpstreamError", "invoice_key", "sync_invoice"]

SYNCED_INDEX = "{{ cookiecutter.package_name }}:invoices:synced"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class InvoiceNotFound(Exception):
    """The upstream API does not know this invoice; retrying will not help."""


class UpstreamError(Exception):
    """The upstream API failed or could not be reached."""


def invoice_key(invoice_id: str) -> str:
    return f"{{ cookiecutter.package_name }}:invoice:{invoice_id}"


async def sync_invoice(ctx: dict[str, Any], invoice_id: str) -> dict[str, Any]:
    http: httpx.AsyncClient = ctx["http"]
    redis: ArqRedis = ctx["redis"]
    try:
        response = await http.get(f"/invoices/{quote(invoice_id, safe='')}")
    except httpx.TransportError as error:
        retry_or_raise(ctx, UpstreamError(f"invoice API unreachable: {error!r}"))
    if response.status_code == httpx.codes.NOT_FOUND:
        raise InvoiceNotFound(f"invoice {invoice_id} does not exist upstream")
    if response.status_code in RETRYABLE_STATUS:
        retry_or_raise(ctx, UpstreamError(f"invoice API answered {response.status_code}"))
    if response.is_error:
        raise UpstreamError(f"invoice API answered {response.status_code}")
    invoice = response.json()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(invoice_key(invoice_id), json.dumps(invoice))
        pipe.zadd(SYNCED_INDEX, {invoice_id: time.time()})
        await pipe.execute()
    return {"invoice_id": invoice_id, "synced": True}
