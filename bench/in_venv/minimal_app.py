"""Baseline apps for the enqueue benchmark: the least FastAPI code that does the job.

`POST /enqueue` calls arq's `enqueue_job` on one pool opened in the lifespan;
`POST /noop` takes the same body and touches no Redis (the HTTP ceiling).
Run with `uvicorn --factory minimal_app:create_app` and BENCH_REDIS_URL set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel


class PingRequest(BaseModel):
    message: str = "pong"


def create_app() -> FastAPI:
    pools: dict[str, ArqRedis] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pools["arq"] = await create_pool(RedisSettings.from_dsn(os.environ["BENCH_REDIS_URL"]))
        yield
        await pools["arq"].aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/enqueue", status_code=202)
    async def enqueue(body: PingRequest) -> dict[str, str]:
        job = await pools["arq"].enqueue_job("ping", body.message)
        if job is None:
            raise HTTPException(409)
        return {"id": job.job_id}

    @app.post("/noop", status_code=202)
    async def noop(body: PingRequest) -> dict[str, str]:
        return {"id": uuid.uuid4().hex}

    return app
