"""DEVELOPMENT ONLY: a tiny OAuth 2.0 / OIDC token issuer for the local platform and tests.

It signs access tokens with keys it generates itself and hands a token to anyone who asks:
there is no client authentication at all. It stands in for the bank's identity provider on a
laptop and in tests, and refuses to start when the settings say production or
``MVNO_DEV_ISSUER_ENABLED`` is false.

Run it with::

    python -m mvno.common.auth.dev_issuer --host 127.0.0.1 --port 8009 \\
        --key-file .local/dev-issuer-keys.json

and get a token with::

    curl -d grant_type=client_credentials -d client_id=portal -d "scope=orders:write" \\
         -d subject=customer-42 http://127.0.0.1:8009/token

The issuer URL in the tokens is ``MVNO_JWT_ISSUER``; set it if the issuer is served elsewhere.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from mvno.common.problems import Problem, install_problem_handlers
from mvno.common.settings import ServiceSettings

__all__ = [
    "DevIssuer",
    "DevIssuerRefusedError",
    "SigningAlgorithm",
    "create_dev_issuer_app",
    "main",
]

SigningAlgorithm = Literal["RS256", "ES256"]
_ALGORITHMS: Final[tuple[SigningAlgorithm, ...]] = ("RS256", "ES256")

DEFAULT_TOKEN_LIFETIME_SECONDS: Final = 3600
# Retired keys stay published so tokens signed before a rotation keep validating for a while.
_KEYS_KEPT_PER_ALGORITHM: Final = 3
_KEY_FILE_VERSION: Final = 1

_log = logging.getLogger(__name__)

_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class DevIssuerRefusedError(RuntimeError):
    """Raised when the development issuer is asked to start where it must not run."""


@dataclass(frozen=True, slots=True)
class _SigningKey:
    kid: str
    algorithm: SigningAlgorithm
    private_key: _PrivateKey

    @classmethod
    def generate(cls, algorithm: SigningAlgorithm) -> _SigningKey:
        private_key: _PrivateKey
        if algorithm == "RS256":
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            private_key = ec.generate_private_key(ec.SECP256R1())
        return cls(_thumbprint(_public_members(private_key)), algorithm, private_key)

    def public_jwk(self) -> dict[str, Any]:
        return {
            **_public_members(self.private_key),
            "kid": self.kid,
            "alg": self.algorithm,
            "use": "sig",
        }

    def to_record(self) -> dict[str, str]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {"kid": self.kid, "alg": self.algorithm, "private_key_pem": pem.decode()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> _SigningKey:
        private_key = serialization.load_pem_private_key(
            str(record["private_key_pem"]).encode(), password=None
        )
        algorithm = record["alg"]
        if algorithm == "RS256" and isinstance(private_key, rsa.RSAPrivateKey):
            return cls(str(record["kid"]), "RS256", private_key)
        if algorithm == "ES256" and isinstance(private_key, ec.EllipticCurvePrivateKey):
            return cls(str(record["kid"]), "ES256", private_key)
        raise ValueError(f"key {record.get('kid')!r} does not match its algorithm")


def _public_members(private_key: _PrivateKey) -> dict[str, Any]:
    """The members RFC 7638 hashes for a thumbprint, which also make a complete public JWK."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        return {name: jwk[name] for name in ("e", "kty", "n")}
    jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {name: jwk[name] for name in ("crv", "kty", "x", "y")}


def _thumbprint(members: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: a ``kid`` derived from the public key itself."""
    canonical = json.dumps(dict(sorted(members.items())), separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class DevIssuer:
    """DEVELOPMENT ONLY: signs access tokens for ``issuer`` with self-generated keys.

    There is one current RS256 (RSA 2048) and one current ES256 (P-256) key. With ``key_file``
    the keys are loaded from, or saved to, that file (mode 0600), so tokens stay valid across a
    restart of the local platform.
    """

    def __init__(self, issuer: str, *, key_file: Path | None = None) -> None:
        self.issuer = issuer
        self._key_file = key_file
        # Oldest first; the last key of an algorithm is the current one.
        self._keys: list[_SigningKey] = []
        if key_file is not None and key_file.exists():
            self._keys = _load_keys(key_file)
        present = {key.algorithm for key in self._keys}
        missing = [algorithm for algorithm in _ALGORITHMS if algorithm not in present]
        if missing:
            self._keys.extend(_SigningKey.generate(algorithm) for algorithm in missing)
            self._save()

    def current_kid(self, algorithm: SigningAlgorithm = "RS256") -> str:
        """The ``kid`` new tokens of ``algorithm`` are signed with."""
        return self._current(algorithm).kid

    def issue(
        self,
        subject: str,
        *,
        audience: str,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        expires_in: int = DEFAULT_TOKEN_LIFETIME_SECONDS,
        algorithm: SigningAlgorithm = "RS256",
        client_id: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed access token (RFC 9068 shape) for ``subject``.

        ``extra_claims`` are applied last and may override any claim, which tests use to forge
        tokens with a wrong issuer, a future ``nbf`` and the like.
        """
        key = self._current(algorithm)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
        }
        if client_id is not None:
            claims["client_id"] = client_id
        scope_list = list(scopes)
        if scope_list:
            claims["scope"] = " ".join(scope_list)
        role_list = list(roles)
        if role_list:
            claims["roles"] = role_list
        claims.update(extra_claims or {})
        return jwt.encode(
            claims,
            key.private_key,
            algorithm=key.algorithm,
            headers={"kid": key.kid, "typ": "at+jwt"},
        )

    def jwks(self) -> dict[str, Any]:
        """The JWKS document: public keys only, current and retired."""
        return {"keys": [key.public_jwk() for key in self._keys]}

    def rotate(self) -> None:
        """Make new current keys; the previous ones stay in the JWKS for tokens already out."""
        for algorithm in _ALGORITHMS:
            self._keys.append(_SigningKey.generate(algorithm))
            same = [key for key in self._keys if key.algorithm == algorithm]
            for retired in same[:-_KEYS_KEPT_PER_ALGORITHM]:
                self._keys.remove(retired)
        self._save()

    def _current(self, algorithm: str) -> _SigningKey:
        for key in reversed(self._keys):
            if key.algorithm == algorithm:
                return key
        raise ValueError(f"unsupported signing algorithm: {algorithm!r}")

    def _save(self) -> None:
        if self._key_file is None:
            return
        document = {
            "version": _KEY_FILE_VERSION,
            "keys": [key.to_record() for key in self._keys],
        }
        self._key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600, and the rename makes the update atomic: a crash never
        # leaves a half-written key file, nor one readable by others.
        fd, temp_name = tempfile.mkstemp(dir=self._key_file.parent, prefix=".dev-issuer-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle)
            os.replace(temp_name, self._key_file)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise


def _load_keys(key_file: Path) -> list[_SigningKey]:
    if key_file.stat().st_mode & 0o077:
        _log.warning("dev issuer key file %s is readable by others; use mode 0600", key_file)
    document = json.loads(key_file.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("version") != _KEY_FILE_VERSION:
        raise ValueError(f"{key_file} is not a dev issuer key file")
    return [_SigningKey.from_record(record) for record in document["keys"]]


def create_dev_issuer_app(
    settings: ServiceSettings,
    *,
    issuer: DevIssuer | None = None,
    key_file: Path | None = None,
    token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS,
) -> FastAPI:
    """DEVELOPMENT ONLY: the issuer as an ASGI app (discovery, JWKS, ``POST /token``, liveness).

    Raises :class:`DevIssuerRefusedError` when ``settings`` are production or
    ``dev_issuer_enabled`` is false. Without ``issuer``, one is made for
    ``settings.jwt_issuer``; it is available as ``app.state.dev_issuer``.
    """
    if settings.is_production or not settings.dev_issuer_enabled:
        raise DevIssuerRefusedError(
            "the development token issuer must not run in production or when "
            "MVNO_DEV_ISSUER_ENABLED is false"
        )
    dev_issuer = issuer or DevIssuer(settings.jwt_issuer, key_file=key_file)
    base_url = dev_issuer.issuer.rstrip("/")
    app = FastAPI(
        title="MVNO development token issuer",
        description="DEVELOPMENT ONLY. Hands out tokens without authenticating clients.",
    )
    install_problem_handlers(app)
    app.state.dev_issuer = dev_issuer

    @app.get("/.well-known/openid-configuration")
    async def openid_configuration() -> dict[str, Any]:
        return {
            "issuer": dev_issuer.issuer,
            "jwks_uri": settings.jwks_url,
            "token_endpoint": f"{base_url}/token",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }

    @app.get("/.well-known/jwks.json")
    async def jwks() -> JSONResponse:
        return JSONResponse(dev_issuer.jwks(), headers={"Cache-Control": "max-age=60"})

    @app.post("/token", openapi_extra=_TOKEN_REQUEST_SCHEMA)
    async def token(request: Request) -> JSONResponse:
        """OAuth 2.0 client credentials grant; ``subject`` (non-standard) names a demo customer.

        DEVELOPMENT ONLY: any ``client_id`` is accepted and any secret is ignored.
        """
        form = await _read_form(request)
        if form.get("grant_type") != "client_credentials":
            raise _oauth_error("unsupported_grant_type", "Only grant_type=client_credentials.")
        client_id = form.get("client_id") or _basic_client_id(request)
        if not client_id:
            raise _oauth_error("invalid_request", "client_id is required.")
        scopes = form.get("scope", "").split()
        access_token = dev_issuer.issue(
            form.get("subject") or client_id,
            audience=settings.jwt_audience,
            scopes=scopes,
            roles=form.get("roles", "").split(),
            client_id=client_id,
            expires_in=token_lifetime_seconds,
        )
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": token_lifetime_seconds,
            "scope": " ".join(scopes),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    _log.warning("DEVELOPMENT token issuer enabled for %s: never expose it", dev_issuer.issuer)
    return app


_TOKEN_REQUEST_SCHEMA: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type", "client_id"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "client_id": {"type": "string"},
                        "scope": {"type": "string", "description": "space-separated scopes"},
                        "subject": {"type": "string", "description": "demo customer id"},
                        "roles": {"type": "string", "description": "space-separated roles"},
                    },
                }
            }
        },
    }
}


def _oauth_error(error: str, detail: str) -> Problem:
    # A problem document that also carries RFC 6749 §5.2's "error", so OAuth clients read it.
    return Problem(400, error.replace("_", "-"), detail, error=error)


async def _read_form(request: Request) -> dict[str, str]:
    # Parsed by hand: FastAPI's Form() needs python-multipart, which the platform does not ship.
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _oauth_error("invalid_request", "Send application/x-www-form-urlencoded.")
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    if any(len(values) > 1 for values in fields.values()):
        raise _oauth_error("invalid_request", "Each parameter may appear only once.")
    return {name: values[0] for name, values in fields.items()}


def _basic_client_id(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def main(argv: Sequence[str] | None = None) -> None:
    """DEVELOPMENT ONLY: serve the issuer with uvicorn (settings from ``MVNO_*`` variables)."""
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m mvno.common.auth.dev_issuer",
        description="Development-only OAuth 2.0 token issuer. Never run it in production.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8009)
    parser.add_argument("--key-file", type=Path, default=None, help="keep keys across restarts")
    args = parser.parse_args(argv)
    settings = ServiceSettings(service_name="dev-issuer")
    logging.basicConfig(level=settings.log_level.upper())
    app = create_dev_issuer_app(settings, key_file=args.key_file)
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower())


if __name__ == "__main__":
    main()
