"""FastAPI dependencies that authenticate the caller and check its scopes and roles.

The app must hold a :class:`~mvno.common.auth.tokens.TokenValidator` in
``app.state.token_validator`` and answer :class:`~mvno.common.problems.Problem` as problem+json
(``install_problem_handlers``). Failures follow RFC 6750 §3: 401 with ``WWW-Authenticate``
when the token is missing or invalid, 403 ``insufficient_scope`` when it lacks privileges.

Usage::

    @router.post("/orders", dependencies=[Depends(require_scopes("orders:write"))])
    async def create_order(principal: CurrentPrincipal) -> ...: ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mvno.common.auth.tokens import (
    InvalidTokenError,
    KeySetUnavailableError,
    Principal,
    TokenValidator,
)
from mvno.common.problems import Problem

__all__ = ["CurrentPrincipal", "get_principal", "require_roles", "require_scopes"]

_BEARER_DESCRIPTION = "OAuth 2.0 access token (JWT)"
# Declares the bearer scheme in OpenAPI; the header is interpreted below, not by FastAPI.
_bearer_scheme = HTTPBearer(auto_error=False, description=_BEARER_DESCRIPTION)


def _quoted(value: str) -> str:
    # auth-param values are quoted-strings; our texts are fixed, this keeps them well-formed.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unauthorized(detail: str, error_description: str | None) -> Problem:
    challenge = "Bearer"
    if error_description is not None:
        challenge += f' error="invalid_token", error_description={_quoted(error_description)}'
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> Principal:
    """The caller's :class:`Principal` from ``Authorization: Bearer <jwt>``, or a 401 problem.

    A request without credentials gets a bare ``Bearer`` challenge (RFC 6750 §3.1 says not to
    send an error code then); a garbled or invalid token gets ``error="invalid_token"``.
    """
    validator: TokenValidator | None = getattr(request.app.state, "token_validator", None)
    if validator is None:
        raise RuntimeError("app.state.token_validator is not set up")
    if credentials is None:
        if request.headers.get("Authorization") is None:
            raise _unauthorized("This request needs a bearer token.", None)
        raise _unauthorized(
            "The Authorization header is not a bearer token.", "expected a bearer token"
        )
    try:
        principal = await validator.validate(credentials.credentials)
    except InvalidTokenError as error:
        raise _unauthorized(
            f"The bearer token is not valid: {error.reason}.", error.reason
        ) from None
    except KeySetUnavailableError:
        raise Problem(
            503,
            "service-unavailable",
            "Tokens cannot be checked right now; try again shortly.",
            headers={"Retry-After": "10"},
        ) from None
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
"""Annotate a route parameter with this to receive the authenticated caller."""


class _BearerWithScopes(HTTPBearer):
    """The bearer scheme, the token's validation and the scope check as one dependency.

    The same answers as ``check_scopes(principal=Depends(get_principal))`` over the bearer
    scheme, and the same OpenAPI security entry (``HTTPBearer``), in one step of FastAPI's
    dependency solving per request instead of three, as each step costs CPU on the hottest routes.
    """

    def __init__(self, needed: frozenset[str]) -> None:
        super().__init__(
            auto_error=False,
            description=_BEARER_DESCRIPTION,
            scheme_name=_bearer_scheme.scheme_name,
        )
        self.needed = needed

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        principal = await get_principal(request, await super().__call__(request))
        if not principal.scopes.issuperset(self.needed):
            scope_list = " ".join(sorted(self.needed))
            challenge = f'Bearer error="insufficient_scope", scope={_quoted(scope_list)}'
            raise Problem(
                403,
                "forbidden",
                f"This needs the scope(s): {scope_list}.",
                headers={"WWW-Authenticate": challenge},
            )
        return principal


def require_scopes(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency answering 403 unless the token grants every one of ``scopes`` (401 without
    a valid token); it gives the caller's :class:`Principal`."""
    return _BearerWithScopes(frozenset(scopes))


def require_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency answering 403 unless the caller holds every one of ``roles``."""
    needed = frozenset(roles)

    async def check_roles(principal: CurrentPrincipal) -> Principal:
        if not principal.roles.issuperset(needed):
            raise Problem(
                403,
                "forbidden",
                f"This needs the role(s): {' '.join(sorted(needed))}.",
                headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
            )
        return principal

    return check_roles
