"""Authentication and authorisation: bearer JWT validation and FastAPI dependencies.

The development token issuer lives in :mod:`mvno.common.auth.dev_issuer` and is deliberately not
imported here, so nothing pulls it into a service by accident.
"""

from mvno.common.auth.dependencies import (
    CurrentPrincipal,
    get_principal,
    require_roles,
    require_scopes,
)
from mvno.common.auth.tokens import (
    ALLOWED_ALGORITHMS,
    InvalidTokenError,
    KeySetUnavailableError,
    Principal,
    TokenValidator,
)

__all__ = [
    "ALLOWED_ALGORITHMS",
    "CurrentPrincipal",
    "InvalidTokenError",
    "KeySetUnavailableError",
    "Principal",
    "TokenValidator",
    "get_principal",
    "require_roles",
    "require_scopes",
]
