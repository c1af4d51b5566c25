"""Tokens (CONTRACT 2.5): create (shown once) and revoke. Admin only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response

from api.auth import NAME_PATTERN, Admin, TokenExists, TokenNotFound
from api.deps import Ctx
from api.routers.common import errors
from api.schemas import TokenIn, TokenOut

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.post(
    "",
    status_code=201,
    response_model=TokenOut,
    summary="Create a token",
    responses={**errors(400, 409), 201: {"description": "the new token; it is shown only this once"}},
)
def create_token(body: TokenIn, principal: Admin, ctx: Ctx) -> TokenOut:
    """Only the token's SHA-256 hash is stored: keep the `token` from this answer, it cannot be shown
    again. The creation is recorded in the audit log with the creator's name."""
    try:
        token = ctx.tokens.create(body.name, body.role, actor=principal.name)
    except TokenExists as e:
        raise HTTPException(409, str(e)) from e
    return TokenOut(name=body.name, role=body.role, token=token)


@router.delete(
    "/{name}", status_code=204, summary="Revoke a token", responses=errors(404, not_found="no such token")
)
def revoke_token(
    name: Annotated[str, Path(pattern=NAME_PATTERN, examples=["ops-budi"])], principal: Admin, ctx: Ctx
) -> Response:
    """The token stops working at once. `KAWAL_ADMIN_TOKEN` cannot be revoked here (unset it instead)."""
    try:
        ctx.tokens.revoke(name, actor=principal.name)
    except TokenNotFound as e:
        raise HTTPException(404, "no such token") from e
    return Response(status_code=204)
