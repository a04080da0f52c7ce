"""Bearer token validation, the FastAPI auth dependencies and the development token issuer.

The JWKS comes from the real dev issuer app served in-process through ``httpx.ASGITransport``;
JWKS requests are counted with an httpx event hook. Bad tokens are forged with PyJWT and
cryptography directly.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI
from jwt.algorithms import RSAAlgorithm

from mvno.common.auth import (
    CurrentPrincipal,
    InvalidTokenError,
    KeySetUnavailableError,
    Principal,
    TokenValidator,
    require_roles,
    require_scopes,
)
from mvno.common.auth.dev_issuer import DevIssuer, DevIssuerRefusedError, create_dev_issuer_app
from mvno.common.problems import PROBLEM_CONTENT_TYPE, install_problem_handlers
from mvno.common.settings import Environment, ServiceSettings

ISSUER = "http://issuer.test"
AUDIENCE = "mvno-platform"
JWKS_URL = f"{ISSUER}/.well-known/jwks.json"
CACHE_SECONDS = 300
MIN_REFRESH_SECONDS = 10


class FakeClock:
    """Monotonic clock the tests move by hand, for cache lifetimes and refresh intervals."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SlowASGITransport(httpx.ASGITransport):
    """An in-process transport that really yields, like a network, so requests can overlap."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return await super().handle_async_request(request)


@dataclass
class AuthEnv:
    issuer: DevIssuer
    key_file: Path
    validator: TokenValidator
    clock: FakeClock
    jwks_requests: list[httpx.Request] = field(default_factory=list)

    def token(self, **overrides: Any) -> str:
        options: dict[str, Any] = {"audience": AUDIENCE, "scopes": ["orders:read"]}
        options.update(overrides)
        return self.issuer.issue("customer-42", **options)

    def private_key(self, algorithm: str = "RS256") -> Any:
        """The issuer's current signing key, read from its key file as an operator could."""
        kid = self.issuer.current_kid(algorithm)  # type: ignore[arg-type]
        records = json.loads(self.key_file.read_text())["keys"]
        pem = next(record["private_key_pem"] for record in records if record["kid"] == kid)
        return serialization.load_pem_private_key(pem.encode(), password=None)


def make_settings(**overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "environment": Environment.TEST,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "jwks_url": JWKS_URL,
    }
    values.update(overrides)
    return ServiceSettings(**values)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[AuthEnv]:
    key_file = tmp_path / "keys" / "dev-issuer.json"
    issuer = DevIssuer(ISSUER, key_file=key_file)
    dev_app = create_dev_issuer_app(make_settings(), issuer=issuer)
    requests: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path == "/.well-known/jwks.json":
            requests.append(request)

    clock = FakeClock()
    async with httpx.AsyncClient(
        transport=SlowASGITransport(app=dev_app),
        base_url=ISSUER,
        event_hooks={"request": [record]},
    ) as client:
        validator = TokenValidator.from_settings(
            make_settings(jwks_cache_seconds=CACHE_SECONDS),
            client,
            min_refresh_interval_seconds=MIN_REFRESH_SECONDS,
            clock=clock,
        )
        yield AuthEnv(issuer, key_file, validator, clock, requests)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_parts(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"


def valid_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "customer-42",
        "iat": now,
        "exp": now + 600,
        "scope": "orders:read orders:write",
    }
    claims.update(overrides)
    return claims


async def refused(env: AuthEnv, token: str) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        await env.validator.validate(token)
    return caught.value.reason


# --- the validator ------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_valid_token_is_accepted(env: AuthEnv, algorithm: str) -> None:
    token = env.token(
        algorithm=algorithm,
        scopes=["orders:read", "orders:write"],
        roles=["staff"],
        client_id="portal",
    )

    principal = await env.validator.validate(token)

    assert jwt.get_unverified_header(token)["alg"] == algorithm
    assert principal.subject == "customer-42"
    assert principal.client_id == "portal"
    assert principal.scopes == {"orders:read", "orders:write"}
    assert principal.roles == {"staff"}
    assert principal.claims["iss"] == ISSUER
    assert principal.has_scopes("orders:write")
    assert not principal.has_scopes("orders:write", "catalog:write")


async def test_scp_list_and_azp_are_read(env: AuthEnv) -> None:
    token = env.token(scopes=[], extra_claims={"scp": ["a", "b"], "azp": "staff-ui"})

    principal = await env.validator.validate(token)

    assert principal.scopes == {"a", "b"}
    assert principal.client_id == "staff-ui"


def test_principal_is_frozen_and_keeps_claims_out_of_repr() -> None:
    principal = Principal.from_claims({"sub": "c-1", "scope": "x", "name": "Jane Roe"})

    with pytest.raises(AttributeError):
        principal.subject = "someone-else"  # type: ignore[misc]
    with pytest.raises(TypeError):
        principal.claims["sub"] = "someone-else"  # type: ignore[index]
    assert "Jane Roe" not in repr(principal)


async def test_expired_token_is_refused(env: AuthEnv) -> None:
    assert await refused(env, env.token(expires_in=-120)) == "token expired"


async def test_token_expired_within_leeway_is_accepted(env: AuthEnv) -> None:
    principal = await env.validator.validate(env.token(expires_in=-5))

    assert principal.subject == "customer-42"


async def test_a_verified_token_is_remembered_only_until_it_expires(env: AuthEnv) -> None:
    token = env.token(expires_in=600)
    assert env.validator.remembered(token) is None
    principal = await env.validator.validate(token)
    assert principal.subject == "customer-42"
    # Remembered: no second signature check, the same principal.
    assert env.validator.remembered(token) is principal
    assert await env.validator.validate(token) is principal

    later = time.time() + 600 + 31  # past exp and the 30 s leeway
    env.validator.wall_clock = lambda: later
    assert env.validator.remembered(token) is None
    assert await refused(env, token) == "token expired"


async def test_a_remembered_token_is_refused_once_its_key_left_the_jwks(env: AuthEnv) -> None:
    token = env.token()
    await env.validator.validate(token)
    env.clock.advance(MIN_REFRESH_SECONDS + 1)  # a new kid may refetch the JWKS; still remembered
    for _ in range(3):  # the issuer publishes its last three keys: the first one is gone
        env.issuer.rotate()
    await env.validator.validate(env.token())  # a fresh token fetches the new JWKS
    assert await refused(env, token) == "token signed by an unknown key"


async def test_token_not_yet_valid_is_refused(env: AuthEnv) -> None:
    token = env.token(extra_claims={"nbf": int(time.time()) + 3600})

    assert await refused(env, token) == "token not yet valid"


async def test_wrong_audience_is_refused(env: AuthEnv) -> None:
    token = env.token(audience="another-platform")

    assert await refused(env, token) == "token not issued for this audience"


async def test_wrong_issuer_is_refused(env: AuthEnv) -> None:
    token = env.token(extra_claims={"iss": "http://evil.test"})

    assert await refused(env, token) == "token not issued by the trusted issuer"


@pytest.mark.parametrize("claim", ["exp", "aud", "iss", "sub"])
async def test_token_without_required_claim_is_refused(env: AuthEnv, claim: str) -> None:
    claims = valid_claims()
    del claims[claim]
    kid = env.issuer.current_kid("RS256")
    token = jwt.encode(claims, env.private_key("RS256"), algorithm="RS256", headers={"kid": kid})

    assert await refused(env, token) == "token lacks a required claim"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_unsigned_token_is_refused(env: AuthEnv, alg: str) -> None:
    header = {"alg": alg, "typ": "JWT", "kid": env.issuer.current_kid("RS256")}
    token = unsigned_parts(header, valid_claims()) + "."

    assert await refused(env, token) == "token algorithm not allowed"


async def test_hs256_signed_with_the_rsa_public_key_is_refused(env: AuthEnv) -> None:
    # The classic confusion attack: the public key, published in the JWKS, used as HMAC secret.
    kid = env.issuer.current_kid("RS256")
    jwk = next(key for key in env.issuer.jwks()["keys"] if key["kid"] == kid)
    public_key = RSAAlgorithm.from_jwk(jwk)
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = unsigned_parts({"alg": "HS256", "typ": "JWT", "kid": kid}, valid_claims())
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url(signature)}"

    assert await refused(env, token) == "token algorithm not allowed"


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256"])
async def test_other_algorithms_with_the_real_key_are_refused(env: AuthEnv, alg: str) -> None:
    kid = env.issuer.current_kid("RS256")
    token = jwt.encode(
        valid_claims(), env.private_key("RS256"), algorithm=alg, headers={"kid": kid}
    )

    assert await refused(env, token) == "token algorithm not allowed"


async def test_header_algorithm_must_match_the_key(env: AuthEnv) -> None:
    # Signed correctly with the EC key, but naming the RSA key's kid.
    token = jwt.encode(
        valid_claims(),
        env.private_key("ES256"),
        algorithm="ES256",
        headers={"kid": env.issuer.current_kid("RS256")},
    )

    assert await refused(env, token) == "token algorithm does not match its key"


def tamper_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "orders:read admin"
    return ".".join([header, b64url(json.dumps(claims).encode()), signature])


def tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return ".".join([header, payload, b64url(bytes(raw))])


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
@pytest.mark.parametrize("tamper", [tamper_payload, tamper_signature])
async def test_tampered_token_is_refused(env: AuthEnv, algorithm: str, tamper: Any) -> None:
    token = env.token(algorithm=algorithm)
    assert (await env.validator.validate(token)).subject == "customer-42"

    assert await refused(env, tamper(token)) == "token signature is invalid"


async def test_token_without_kid_is_refused(env: AuthEnv) -> None:
    token = jwt.encode(valid_claims(), env.private_key("RS256"), algorithm="RS256")

    assert "kid" not in jwt.get_unverified_header(token)
    assert await refused(env, token) == "token has no key id"
    assert env.jwks_requests == []


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 20_000])
async def test_malformed_token_is_refused(env: AuthEnv, token: str) -> None:
    assert await refused(env, token) == "token is malformed"


async def test_jwks_is_cached_until_it_expires(env: AuthEnv) -> None:
    await env.validator.validate(env.token())
    await env.validator.validate(env.token(algorithm="ES256"))
    assert len(env.jwks_requests) == 1

    env.clock.advance(CACHE_SECONDS + 1)
    await env.validator.validate(env.token())

    assert len(env.jwks_requests) == 2


async def test_concurrent_validations_share_one_jwks_fetch(env: AuthEnv) -> None:
    tokens = [env.token() for _ in range(10)]

    principals = await asyncio.gather(*(env.validator.validate(token) for token in tokens))

    assert {principal.subject for principal in principals} == {"customer-42"}
    assert len(env.jwks_requests) == 1


async def test_concurrent_tokens_with_a_new_kid_share_one_refetch(env: AuthEnv) -> None:
    await env.validator.validate(env.token())
    env.clock.advance(MIN_REFRESH_SECONDS + 1)
    env.issuer.rotate()
    tokens = [env.token(algorithm="ES256") for _ in range(10)]

    principals = await asyncio.gather(*(env.validator.validate(token) for token in tokens))

    assert len(principals) == 10
    assert len(env.jwks_requests) == 2


async def test_unknown_kid_refetches_once_then_is_refused(env: AuthEnv) -> None:
    await env.validator.validate(env.token())
    assert len(env.jwks_requests) == 1
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def forged(kid: str) -> str:
        return jwt.encode(valid_claims(), foreign_key, algorithm="RS256", headers={"kid": kid})

    env.clock.advance(MIN_REFRESH_SECONDS + 1)
    assert await refused(env, forged("bogus-1")) == "token signed by an unknown key"
    assert len(env.jwks_requests) == 2

    # A flood of made-up kids right after must not reach the identity provider again.
    for number in range(2, 6):
        assert await refused(env, forged(f"bogus-{number}")) == "token signed by an unknown key"
    assert len(env.jwks_requests) == 2

    env.clock.advance(MIN_REFRESH_SECONDS + 1)
    await refused(env, forged("bogus-6"))
    assert len(env.jwks_requests) == 3


async def test_key_rotated_at_the_issuer_is_accepted_after_refetch(env: AuthEnv) -> None:
    old_token = env.token()
    await env.validator.validate(old_token)
    old_kid = env.issuer.current_kid("RS256")

    env.clock.advance(MIN_REFRESH_SECONDS + 1)
    env.issuer.rotate()
    new_token = env.token()

    assert jwt.get_unverified_header(new_token)["kid"] != old_kid
    assert (await env.validator.validate(new_token)).subject == "customer-42"
    assert len(env.jwks_requests) == 2
    # The retired key stays published, so tokens signed before the rotation still pass.
    assert (await env.validator.validate(old_token)).subject == "customer-42"
    assert len(env.jwks_requests) == 2


async def test_unreachable_jwks_is_an_outage_not_a_bad_token() -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(failing)) as client:
        validator = TokenValidator(
            issuer=ISSUER, audience=AUDIENCE, jwks_url=JWKS_URL, http_client=client
        )
        issuer = DevIssuer(ISSUER)

        with pytest.raises(KeySetUnavailableError):
            await validator.validate(issuer.issue("customer-42", audience=AUDIENCE))


# --- the FastAPI dependencies -------------------------------------------------------------------


@pytest.fixture
async def api(env: AuthEnv) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.token_validator = env.validator

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"subject": principal.subject}

    @app.get("/orders", dependencies=[Depends(require_scopes("orders:read"))])
    async def orders() -> dict[str, str]:
        return {"orders": "none yet"}

    @app.get("/staff")
    async def staff(principal: Principal = Depends(require_roles("staff"))) -> dict[str, str]:
        return {"subject": principal.subject}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["type"] == f"urn:mvno:problem:{slug}"


async def test_missing_token_answers_401_with_a_bearer_challenge(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/me")

    assert_problem(response, 401, "unauthorized")
    # RFC 6750 §3.1: no error code when the request carried no credentials at all.
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("authorization", ["Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer"])
async def test_garbled_token_answers_401_invalid_token(
    api: httpx.AsyncClient, authorization: str
) -> None:
    response = await api.get("/me", headers={"Authorization": authorization})

    assert_problem(response, 401, "unauthorized")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", error_description="')


async def test_expired_token_answers_401_with_the_reason(
    env: AuthEnv, api: httpx.AsyncClient
) -> None:
    response = await api.get("/me", headers=bearer(env.token(expires_in=-120)))

    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="token expired"'
    )


async def test_valid_token_reaches_the_route(env: AuthEnv, api: httpx.AsyncClient) -> None:
    response = await api.get("/me", headers=bearer(env.token(scopes=[])))

    assert response.status_code == 200
    assert response.json() == {"subject": "customer-42"}


async def test_missing_scope_answers_403_insufficient_scope(
    env: AuthEnv, api: httpx.AsyncClient
) -> None:
    response = await api.get("/orders", headers=bearer(env.token(scopes=["catalog:read"])))

    assert_problem(response, 403, "forbidden")
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="orders:read"'
    )


async def test_present_scope_answers_200(env: AuthEnv, api: httpx.AsyncClient) -> None:
    response = await api.get("/orders", headers=bearer(env.token(scopes=["orders:read"])))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, "Bearer"),
        ("Basic dXNlcjpwYXNz", 'Bearer error="invalid_token", error_description="expected a bearer token"'),
        ("Bearer not-a-jwt", 'Bearer error="invalid_token", error_description="token is malformed"'),
    ],
)  # fmt: skip
async def test_a_scoped_route_answers_401_as_any_other_without_a_valid_token(
    api: httpx.AsyncClient, authorization: str | None, challenge: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for path in ("/me", "/orders"):
        response = await api.get(path, headers=headers)

        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == challenge


async def test_a_scoped_route_declares_the_same_bearer_scheme_in_openapi(
    api: httpx.AsyncClient,
) -> None:
    document = (await api.get("/openapi.json")).json()

    assert document["components"]["securitySchemes"] == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "OAuth 2.0 access token (JWT)",
        }
    }
    for path in ("/me", "/orders"):
        assert document["paths"][path]["get"]["security"] == [{"HTTPBearer": []}]


async def test_roles_are_required(env: AuthEnv, api: httpx.AsyncClient) -> None:
    without = await api.get("/staff", headers=bearer(env.token()))
    with_role = await api.get("/staff", headers=bearer(env.token(roles=["staff"])))

    assert_problem(without, 403, "forbidden")
    assert with_role.status_code == 200


# --- the development issuer ---------------------------------------------------------------------


def test_dev_issuer_refuses_production() -> None:
    with pytest.raises(DevIssuerRefusedError):
        create_dev_issuer_app(
            make_settings(environment=Environment.PRODUCTION, dev_issuer_enabled=False)
        )
    # Even settings that slipped past their own production checks are refused.
    slipped = ServiceSettings.model_construct(
        environment=Environment.PRODUCTION, dev_issuer_enabled=True
    )
    with pytest.raises(DevIssuerRefusedError):
        create_dev_issuer_app(slipped)


def test_dev_issuer_refuses_when_disabled() -> None:
    with pytest.raises(DevIssuerRefusedError):
        create_dev_issuer_app(make_settings(dev_issuer_enabled=False))


def test_jwks_publishes_public_keys_only(env: AuthEnv) -> None:
    keys = env.issuer.jwks()["keys"]

    assert {(key["kty"], key["alg"]) for key in keys} == {("RSA", "RS256"), ("EC", "ES256")}
    private_members = {"d", "p", "q", "dp", "dq", "qi"}
    assert all(private_members.isdisjoint(key) for key in keys)


async def test_keys_survive_a_restart_through_the_key_file(env: AuthEnv) -> None:
    token = env.token()

    restarted = DevIssuer(ISSUER, key_file=env.key_file)

    assert stat.S_IMODE(env.key_file.stat().st_mode) == 0o600
    assert restarted.jwks() == env.issuer.jwks()
    assert restarted.current_kid("ES256") == env.issuer.current_kid("ES256")
    assert (await env.validator.validate(token)).subject == "customer-42"


def test_rotation_keeps_old_keys_published(env: AuthEnv) -> None:
    old_kids = {key["kid"] for key in env.issuer.jwks()["keys"]}

    env.issuer.rotate()

    kids = {key["kid"] for key in env.issuer.jwks()["keys"]}
    assert old_kids < kids
    assert env.issuer.current_kid("RS256") not in old_kids
    assert DevIssuer(ISSUER, key_file=env.key_file).jwks() == env.issuer.jwks()


async def test_token_endpoint_issues_client_credentials_tokens(env: AuthEnv) -> None:
    dev_app = create_dev_issuer_app(make_settings(), issuer=env.issuer)
    transport = httpx.ASGITransport(app=dev_app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        discovery = (await client.get("/.well-known/openid-configuration")).json()
        response = await client.post(
            "/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "portal",
                "scope": "orders:read orders:write",
                "subject": "customer-7",
            },
        )
        refused_grant = await client.post("/token", data={"grant_type": "password"})
        live = await client.get("/health/live")

    assert discovery["issuer"] == ISSUER
    assert discovery["jwks_uri"] == JWKS_URL
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    principal = await env.validator.validate(body["access_token"])
    assert principal.subject == "customer-7"
    assert principal.client_id == "portal"
    assert principal.scopes == {"orders:read", "orders:write"}
    assert_problem(refused_grant, 400, "unsupported-grant-type")
    assert refused_grant.json()["error"] == "unsupported_grant_type"
    assert live.status_code == 200
