"""Bearer tokens on /jobs: required, compared with each configured token, health and docs open."""

from __future__ import annotations

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr, ValidationError

from {{ cookiecutter.package_name }}.config import Config
from {{ cookiecutter.package_name }}.main import create_app

from ..conftest import TOKEN, make_config

OLD, NEW = "old-token-0123456789", "new-token-0123456789"
TOKENS_VARIABLE = "{{ cookiecutter.env_prefix }}API_TOKENS"


@pytest.fixture
def config() -> Config:
    return make_config(api_tokens=SecretStr(f"{OLD}, {NEW}"))


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://test")


async def test_job_routes_need_a_valid_token(anonymous: AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": OLD}):
        for method, path in [("POST", "/jobs/ping"), ("GET", "/jobs/x"), ("DELETE", "/jobs/x")]:
            response = await anonymous.request(method, path, json={}, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json() == {"detail": "a valid bearer token is required"}


async def test_every_configured_token_works_so_tokens_can_rotate(anonymous: AsyncClient) -> None:
    for token in (OLD, NEW):
        headers = {"Authorization": f"Bearer {token}"}
        assert (await anonymous.post("/jobs/ping", json={}, headers=headers)).status_code == 202
    headers = {"Authorization": f"Bearer {TOKEN}"}  # the other tests' token is not configured here
    assert (await anonymous.post("/jobs/ping", json={}, headers=headers)).status_code == 401


async def test_health_and_docs_need_no_token(anonymous: AsyncClient) -> None:
    for path in ("/health", "/health/ready", "/docs", "/openapi.json"):
        assert (await anonymous.get(path)).status_code == 200, path
    schemes = (await anonymous.get("/openapi.json")).json()["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"


async def test_the_app_refuses_to_start_without_a_token() -> None:
    app = create_app(make_config(api_tokens=None))
    with pytest.raises(RuntimeError, match=f"{TOKENS_VARIABLE} is not set"):
        async with LifespanManager(app):
            pass


def test_short_tokens_are_refused_without_showing_them() -> None:
    with pytest.raises(ValidationError, match="at least 16 characters") as error:
        make_config(api_tokens=SecretStr(f"{NEW},hunter2"))
    assert "hunter2" not in str(error.value)
