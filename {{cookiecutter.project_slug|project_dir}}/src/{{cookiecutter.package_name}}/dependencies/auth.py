"""Bearer-token authentication for the job routes."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

__all__ = ["TOKEN_REQUIRED", "require_token"]

bearer = HTTPBearer(
    auto_error=False,
    description="A token from {{ cookiecutter.env_prefix }}API_TOKENS",
)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through only with `Authorization: Bearer <one of the tokens>`."""
    tokens: tuple[bytes, ...] = request.app.state.config.api_token_list
    presented = credentials.credentials.encode() if credentials else b""
    # Compared with every token, in constant time: how long this takes says nothing
    # about which token, or how much of one, matched.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented, token)
    if not (credentials and matched):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


# For `app.include_router(router, dependencies=TOKEN_REQUIRED)`.
TOKEN_REQUIRED = [Depends(require_token)]
