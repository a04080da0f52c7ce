"""Bearer JWT validation following RFC 8725 (JSON Web Token Best Current Practices).

Only asymmetric algorithms on an explicit allow-list are accepted, every token must name its
signing key (``kid``), and the keys come from the identity provider's JWKS, fetched without
blocking the event loop and cached. A token that fails any check raises
:class:`InvalidTokenError` with a short reason that is safe to show to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import httpx
import jwt
from cachetools import TTLCache
from jwt import PyJWK

if TYPE_CHECKING:
    from mvno.common.settings import ServiceSettings

__all__ = [
    "ALLOWED_ALGORITHMS",
    "InvalidTokenError",
    "KeySetUnavailableError",
    "Principal",
    "TokenValidator",
]

ALLOWED_ALGORITHMS: Final = frozenset({"RS256", "ES256"})
"""The only JWS algorithms accepted: never ``none``, never HMAC (RFC 8725 §2.1, §3.1)."""

# Bearer tokens are a few KiB at most; refusing giants bounds the work done before verification.
_MAX_TOKEN_LENGTH: Final = 16 * 1024

_log = logging.getLogger(__name__)


class InvalidTokenError(Exception):
    """The bearer token cannot be accepted; ``reason`` is short, fixed text, safe to return."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class KeySetUnavailableError(Exception):
    """No signing keys are known: the JWKS could not be fetched (an outage, not a bad token)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a validated access token."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]
    roles: frozenset[str]
    # Left out of repr (claims may carry personal data that must not land in logs) and of
    # hashing/equality (a mapping is not hashable).
    claims: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    def has_scopes(self, *scopes: str) -> bool:
        """Whether the token grants every one of ``scopes``."""
        return self.scopes.issuperset(scopes)

    def has_roles(self, *roles: str) -> bool:
        """Whether the caller holds every one of ``roles``."""
        return self.roles.issuperset(roles)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        """Build a principal from already validated claims.

        Scopes are read from ``scope`` (RFC 8693/9068, space-separated) and ``scp`` (a list, or a
        string as some providers send it); roles from ``roles``.
        """
        client_id = claims.get("azp", claims.get("client_id"))
        return cls(
            subject=str(claims["sub"]),
            client_id=client_id if isinstance(client_id, str) else None,
            scopes=_string_set(claims.get("scope")) | _string_set(claims.get("scp")),
            roles=_string_set(claims.get("roles")),
            claims=MappingProxyType(dict(claims)),
        )


def _string_set(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(item for item in value if isinstance(item, str) and item)
    return frozenset()


# Fixed reasons per PyJWT error: PyJWT's own messages are not shown, so nothing about keys leaks.
_REASONS: Final[tuple[tuple[type[jwt.PyJWTError], str], ...]] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "token not issued for this audience"),
    (jwt.InvalidIssuerError, "token not issued by the trusted issuer"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim"),
    (jwt.InvalidSignatureError, "token signature is invalid"),
    (jwt.InvalidAlgorithmError, "token algorithm not allowed"),
    (jwt.InvalidKeyError, "token signing key is not acceptable"),
    (jwt.DecodeError, "token is malformed"),
)


def _reason_for(error: jwt.PyJWTError) -> str:
    for error_type, reason in _REASONS:
        if isinstance(error, error_type):
            return reason
    return "token is invalid"


class TokenValidator:
    """Validates bearer JWTs against one issuer, one audience and the issuer's JWKS.

    The JWKS is fetched with the injected :class:`httpx.AsyncClient` (whose lifecycle stays with
    the caller) and cached for ``cache_seconds``. A token naming an unknown ``kid`` triggers one
    refetch, so keys rotated in at the issuer are picked up at once, but never more often than
    every ``min_refresh_interval_seconds``: a flood of made-up ``kid`` values cannot hammer the
    identity provider. Concurrent refreshes wait for a single fetch. If a refresh fails, the keys
    already known stay in use until a later refresh succeeds.

    A token verified once is remembered (by its exact text) for ``verified_cache_seconds``, so a
    client's many requests with one token cost one signature check: within that time it is
    accepted again only while it has not expired and its key is still in the issuer's JWKS.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str,
        http_client: httpx.AsyncClient,
        cache_seconds: float = 300.0,
        leeway_seconds: float = 30.0,
        min_refresh_interval_seconds: float = 10.0,
        verified_cache_seconds: float = 60.0,
        max_verified: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._jwks_url = jwks_url
        self._http = http_client
        self._cache_seconds = cache_seconds
        self._leeway = leeway_seconds
        self._min_refresh_interval = min_refresh_interval_seconds
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.wall_clock = wall_clock
        """Seconds since the epoch, as ``exp`` counts them (replaceable in tests)."""
        self._verified: TTLCache[str, tuple[Principal, str, float]] | None = (
            TTLCache(maxsize=max_verified, ttl=verified_cache_seconds, timer=clock)
            if verified_cache_seconds > 0
            else None
        )

    @classmethod
    def from_settings(
        cls, settings: ServiceSettings, http_client: httpx.AsyncClient, **overrides: Any
    ) -> TokenValidator:
        """A validator configured from the ``MVNO_JWT_*`` / ``MVNO_JWKS_*`` settings."""
        options: dict[str, Any] = {
            "issuer": settings.jwt_issuer,
            "audience": settings.jwt_audience,
            "jwks_url": settings.jwks_url,
            "cache_seconds": float(settings.jwks_cache_seconds),
            "verified_cache_seconds": float(settings.jwt_verified_cache_seconds),
        }
        options.update(overrides)
        return cls(http_client=http_client, **options)

    def remembered(self, token: str) -> Principal | None:
        """The principal of ``token`` if it was verified lately, has not expired and its key is
        still published; ``None`` when it must be verified (without waiting, for hot paths)."""
        if self._verified is None or (known := self._verified.get(token)) is None:
            return None
        principal, known_kid, expires = known
        if known_kid in self._keys and self.wall_clock() <= expires + self._leeway:
            return principal
        self._verified.pop(token, None)
        return None

    async def validate(self, token: str) -> Principal:
        """Verify ``token`` and return its :class:`Principal`.

        Raises :class:`InvalidTokenError` when the token is not acceptable and
        :class:`KeySetUnavailableError` when no signing keys could be fetched at all.
        """
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidTokenError("token is malformed")
        if (known := self.remembered(token)) is not None:
            return known
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("token is malformed") from None

        # Checked before any key lookup so a forbidden algorithm never reaches a verifier.
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise InvalidTokenError("token algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("token has no key id")

        key = await self._key_for(kid)
        if key is None:
            raise InvalidTokenError("token signed by an unknown key")
        if key.algorithm_name != algorithm:
            raise InvalidTokenError("token algorithm does not match its key")

        try:
            claims = jwt.decode(
                token,
                key,
                # The key's own algorithm, never the header's: this is what defeats confusion
                # attacks such as HS256 signed with the RSA public key (RFC 8725 §2.1).
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "enforce_minimum_key_length": True,
                    # Checked below against wall_clock, the clock remembered tokens are held to.
                    "verify_exp": False,
                },
            )
        except jwt.PyJWTError as error:
            raise InvalidTokenError(_reason_for(error)) from None
        expires = claims["exp"]
        if isinstance(expires, bool) or not isinstance(expires, int | float):
            raise InvalidTokenError("token is malformed")
        if self.wall_clock() > expires + self._leeway:
            raise InvalidTokenError("token expired")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidTokenError("token lacks a required claim")
        principal = Principal.from_claims(claims)
        if self._verified is not None:
            self._verified[token] = (principal, kid, float(expires))
        return principal

    async def _key_for(self, kid: str) -> PyJWK | None:
        # A kid we lack may be in the JWKS being fetched right now: wait for it, don't refuse.
        if self._needs_fetch(kid) or (kid not in self._keys and self._lock.locked()):
            async with self._lock:
                # Whoever held the lock may just have fetched; decide again before fetching.
                if self._needs_fetch(kid):
                    await self._fetch()
        if self._fetched_at is None:
            raise KeySetUnavailableError("the JWKS could not be fetched")
        return self._keys.get(kid)

    def _needs_fetch(self, kid: str) -> bool:
        now = self._clock()
        if self._attempted_at is None:
            return True
        fresh = self._fetched_at is not None and now - self._fetched_at < self._cache_seconds
        if fresh and kid in self._keys:
            return False
        return now - self._attempted_at >= self._min_refresh_interval

    async def _fetch(self) -> None:
        self._attempted_at = self._clock()
        try:
            response = await self._http.get(self._jwks_url, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = _parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as error:
            _log.warning("could not refresh the JWKS from %s: %s", self._jwks_url, error)
            return
        self._keys = keys
        self._fetched_at = self._clock()
        _log.info("loaded %d signing keys from %s", len(keys), self._jwks_url)


def _parse_jwks(document: object) -> dict[str, PyJWK]:
    """The usable signing keys of a JWKS document by ``kid``; anything else is skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: dict[str, PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        # Private members ("d") mean a misconfigured provider; a key for encryption is not ours.
        if not isinstance(kid, str) or "d" in entry or entry.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(entry)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name in ALLOWED_ALGORITHMS:
            keys[kid] = key
    return keys
