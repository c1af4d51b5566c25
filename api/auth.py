"""Bearer tokens with three roles (CONTRACT 2.1). Tokens are stored only as SHA-256 hashes.

A token is 32 random bytes (256 bits), so a plain SHA-256 is enough: there is nothing to brute-force that a
slow password hash would protect. ``KAWAL_ADMIN_TOKEN`` is honoured as an admin token named ``admin-env``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kawal.audit import AuditLog
from storage import Database, IntegrityError

ENV_ADMIN_NAME = "admin-env"
TOKEN_PREFIX = "kwl_"
NAME_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"
_NAME_RE = re.compile(NAME_PATTERN)


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role

    def allows(self, needed: Role) -> bool:
        return self.role.rank >= needed.rank


class TokenExists(ValueError):
    pass


class TokenNotFound(LookupError):
    pass


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenStore:
    """Creates, looks up and revokes API tokens. Creation and revocation are audited."""

    def __init__(self, db: Database, admin_token: str | None = None, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit or AuditLog(db)
        self._admin_hash = hash_token(admin_token) if admin_token else None

    def create(self, name: str, role: Role | str, actor: str, now: float | None = None) -> str:
        """A new token, returned in clear this once. Raises ValueError / TokenExists."""
        role = Role(role)
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"token name must match {NAME_PATTERN}")
        if name == ENV_ADMIN_NAME:
            raise TokenExists(f"{ENV_ADMIN_NAME!r} is reserved for KAWAL_ADMIN_TOKEN")
        token = new_token()
        at = time.time() if now is None else now
        try:
            with self.db.write() as c:
                c.execute(
                    "INSERT INTO tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
                    (name, str(role), hash_token(token), at),
                )
                self.audit.append(
                    c, actor, "token.create", f"token:{name}", {"name": name, "role": str(role)}
                )
        except IntegrityError as e:
            raise TokenExists(f"a token named {name!r} already exists") from e
        return token

    def revoke(self, name: str, actor: str) -> None:
        with self.db.write() as c:
            row = c.execute("SELECT role FROM tokens WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise TokenNotFound(name)
            c.execute("DELETE FROM tokens WHERE name = ?", (name,))
            self.audit.append(c, actor, "token.revoke", f"token:{name}", {"name": name, "role": row["role"]})

    def lookup(self, token: str) -> Principal | None:
        if not token:
            return None
        digest = hash_token(token)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return Principal(ENV_ADMIN_NAME, Role.ADMIN)
        # The lookup is by hash, so timing reveals nothing about the token itself.
        row = (
            self.db.conn().execute("SELECT name, role FROM tokens WHERE token_hash = ?", (digest,)).fetchone()
        )
        return None if row is None else Principal(str(row["name"]), Role(row["role"]))

    def list(self) -> list[dict[str, object]]:
        """Names, roles and creation times; never the hashes."""
        rows = self.db.conn().execute("SELECT name, role, created_at FROM tokens ORDER BY name")
        return [{"name": r["name"], "role": r["role"], "created_at": r["created_at"]} for r in rows]


bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="An API token: `Authorization: Bearer <token>`. Roles: viewer < operator < admin.",
)


def require(role: Role) -> Callable[..., Principal]:
    """A dependency: the caller's principal, 401 without a known token, 403 when the role is too low."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal:
        store: TokenStore = request.app.state.ctx.tokens
        principal = store.lookup(credentials.credentials) if credentials is not None else None
        if principal is None:
            raise HTTPException(
                status_code=401,
                detail="missing bearer token" if credentials is None else "unknown token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not principal.allows(role):
            raise HTTPException(
                status_code=403, detail=f"this needs the {role} role; the token is {principal.role}"
            )
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
