"""The upstreams a customer's screens need: orders, catalog and billing-sync over HTTP.

Reads shown on a screen have a tight deadline and no retries: past it the screen answers with what
it has. Placing an order has a longer one and is retried under the same Idempotency-Key, so a
retry can never buy twice. Service-to-service calls carry portal-api's own client-credential
token, fetched from the identity provider's token endpoint and kept until shortly before it
expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
from cachetools import TTLCache

from mvno.common.http import create_http_client
from mvno.portal_api.settings import PortalApiSettings

_log = logging.getLogger(__name__)

BALANCE_PATH = "/tmf-api/balanceManagement/v4/bucket"
USAGE_PATH = "/tmf-api/usageManagement/v4/usage"
ORDER_PATH = "/tmf-api/productOrderingManagement/v4/productOrder"
INVENTORY_PATH = "/tmf-api/productInventory/v4/product"
CATALOG_PATH = "/tmf-api/productCatalogManagement/v4"

PURCHASE_BY_PRODUCT_KIND = {
    "starter_pack": "line",
    "contract": "line",
    "data_bundle": "bundle",
    "voice_bundle": "bundle",
    "combo_bundle": "bundle",
    "airtime": "airtime",
}
"""How each kind of offering is bought through the portal (anything else is not sold here)."""


class UpstreamUnavailable(Exception):
    """An upstream did not answer in time, or answered with a server error."""

    def __init__(self, upstream: str, reason: str) -> None:
        self.upstream = upstream
        self.reason = reason
        super().__init__(f"{upstream}: {reason}")


class UpstreamRefused(Exception):
    """An upstream refused the request (4xx); its problem document is passed on."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{status}: {problem.get('detail')}")


class TokenSource:
    """portal-api's own access token (OAuth 2.0 client credentials), kept until near expiry."""

    def __init__(self, settings: PortalApiSettings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if self._token and time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at:
                return self._token
            settings = self._settings
            try:
                response = await self._http.post(
                    settings.token_endpoint,
                    data={"grant_type": "client_credentials", "scope": settings.client_scopes},
                    auth=(settings.client_id, settings.client_secret.get_secret_value()),
                )
            except httpx.HTTPError as error:
                raise UpstreamUnavailable("identity provider", type(error).__name__) from None
            if response.status_code != 200:
                raise UpstreamUnavailable("identity provider", f"status {response.status_code}")
            body = response.json()
            lifetime = float(body.get("expires_in") or 300)
            self._token = str(body["access_token"])
            self._expires_at = time.monotonic() + max(lifetime - 60, lifetime / 2)
            return self._token

    def forget(self) -> None:
        self._token = None


@dataclass
class Upstreams:
    settings: PortalApiSettings
    reads: httpx.AsyncClient
    writes: httpx.AsyncClient
    tokens: TokenSource
    catalogue: TTLCache[str, list[dict[str, Any]]]
    down_until: dict[str, float] = field(default_factory=dict)
    probing: set[str] = field(default_factory=set)
    """Upstreams that just failed a screen's read, and until when they are left alone: while
    one is down or slow, screens answer from their copies at once instead of each waiting out
    the deadline (and the upstream is not hammered while it recovers)."""

    @classmethod
    def open(cls, settings: PortalApiSettings) -> Upstreams:
        reads = create_http_client(settings, timeout=settings.upstream_timeout_seconds, attempts=1)
        writes = create_http_client(settings, timeout=settings.order_timeout_seconds)
        return cls(
            settings=settings,
            reads=reads,
            writes=writes,
            tokens=TokenSource(settings, writes),
            catalogue=TTLCache(maxsize=4, ttl=max(settings.catalogue_cache_seconds, 0.001)),
        )

    async def aclose(self) -> None:
        await self.reads.aclose()
        await self.writes.aclose()

    async def _get(
        self, upstream: str, url: str, params: Mapping[str, Any], *, patient: bool = False
    ) -> httpx.Response:
        if not patient and self.resting(upstream):
            raise UpstreamUnavailable(upstream, "left alone after a failure")
        if not patient and upstream in self.down_until:
            self.probing.add(upstream)  # this request finds out whether it is back
        client = self.writes if patient else self.reads
        try:
            headers = {"Authorization": f"Bearer {await self.tokens.token()}"}
            response = await client.get(url, params=params, headers=headers)
        except httpx.HTTPError as error:
            raise self._failed(upstream, type(error).__name__) from None
        finally:
            self.probing.discard(upstream)
        if response.status_code == 401:
            self.tokens.forget()
        if response.status_code >= 500 or response.status_code in (401, 403, 429):
            raise self._failed(upstream, f"status {response.status_code}")
        return response

    def resting(self, upstream: str) -> bool:
        """Whether screens leave ``upstream`` alone for now: it failed a moment ago, or one
        request is already finding out whether it is back (the others do not pile on)."""
        return time.monotonic() < self.down_until.get(upstream, 0.0) or upstream in self.probing

    def _failed(self, upstream: str, reason: str) -> UpstreamUnavailable:
        cool_off = self.settings.upstream_cool_off_seconds
        _log.warning(
            "%s failed a read (%s); screens use their copies for %.0f s", upstream, reason, cool_off
        )
        self.down_until[upstream] = time.monotonic() + cool_off
        return UpstreamUnavailable(upstream, reason)

    def _recovered(self, upstream: str) -> None:
        self.down_until.pop(upstream, None)

    # --- billing-sync ---------------------------------------------------------------------------

    async def buckets(self, subscription_id: str) -> list[dict[str, Any]]:
        response = await self._get(
            "billing-sync",
            self.settings.billing_sync_url + BALANCE_PATH,
            {"product.id": subscription_id, "limit": 100},
        )
        return self._list("billing-sync", response)

    async def usage(
        self, subscription_id: str, date_from: date, date_to: date
    ) -> list[dict[str, Any]]:
        response = await self._get(
            "billing-sync",
            self.settings.billing_sync_url + USAGE_PATH,
            {
                "product.id": subscription_id,
                "date.gte": date_from.isoformat(),
                "date.lte": date_to.isoformat(),
                "limit": 100,
            },
        )
        return self._list("billing-sync", response)

    # --- orders ---------------------------------------------------------------------------------

    async def place_order(
        self, body: Mapping[str, Any], *, customer_id: str, idempotency_key: str
    ) -> dict[str, Any]:
        """Place a TMF622 order; the key is the customer's attempt, scoped to the customer."""
        scoped = hashlib.sha256(f"{customer_id}\x00{idempotency_key}".encode()).hexdigest()
        headers = {
            "Authorization": f"Bearer {await self.tokens.token()}",
            "Idempotency-Key": scoped,
        }
        try:
            response = await self.writes.post(
                self.settings.orders_url + ORDER_PATH, json=dict(body), headers=headers
            )
        except httpx.HTTPError as error:
            raise UpstreamUnavailable("orders", type(error).__name__) from None
        if response.status_code in (200, 201):
            answer: dict[str, Any] = response.json()
            return answer
        if response.status_code == 401:
            self.tokens.forget()
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 429):
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            raise UpstreamRefused(
                response.status_code, problem if isinstance(problem, dict) else {}
            )
        raise UpstreamUnavailable("orders", f"status {response.status_code}")

    async def esim_activation_code(self, subscription_id: str) -> str | None:
        """The line's eSIM activation code (LPA string); ``None`` when it has none.

        Not a screen that must answer at once with what it has: there is no copy to show instead
        (the code is never kept here), so it waits as long as a purchase does.
        """
        response = await self._get(
            "orders",
            f"{self.settings.orders_url}{INVENTORY_PATH}/{subscription_id}/esimActivation",
            {},
            patient=True,
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise UpstreamUnavailable("orders", f"status {response.status_code}")
        code = response.json().get("activationCode")
        return code if isinstance(code, str) and code else None

    # --- catalog --------------------------------------------------------------------------------

    async def offers(self) -> list[dict[str, Any]]:
        """What the portal's channel sells now, shaped for the screen; cached briefly."""
        cached = self.catalogue.get("offers")
        if cached is not None:
            return cached
        base = self.settings.catalog_url + CATALOG_PATH
        offerings, specifications = await asyncio.gather(
            self._catalog_list(
                base + "/productOffering",
                {"isSellable": "true", "channel.id": self.settings.channel, "limit": 200},
            ),
            self._catalog_list(base + "/productSpecification", {"limit": 200}),
        )
        offers = shape_offers(offerings, specifications)
        if self.settings.catalogue_cache_seconds > 0:
            self.catalogue["offers"] = offers
        return offers

    async def _catalog_list(self, url: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        try:
            response = await self.reads.get(url, params=params)
        except httpx.HTTPError as error:
            raise UpstreamUnavailable("catalog", type(error).__name__) from None
        if response.status_code != 200:
            raise UpstreamUnavailable("catalog", f"status {response.status_code}")
        return _json_list("catalog", response)

    def _list(self, upstream: str, response: httpx.Response) -> list[dict[str, Any]]:
        try:
            found = _json_list(upstream, response)
        except UpstreamUnavailable as error:
            raise self._failed(upstream, error.reason) from None
        self._recovered(upstream)
        return found

    def catalogue_changed(self) -> None:
        self.catalogue.clear()


def _json_list(upstream: str, response: httpx.Response) -> list[dict[str, Any]]:
    if response.status_code != 200:
        raise UpstreamUnavailable(upstream, f"status {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise UpstreamUnavailable(upstream, "not JSON") from None
    if not isinstance(body, list):
        raise UpstreamUnavailable(upstream, "not a list")
    return [item for item in body if isinstance(item, dict)]


def shape_offers(
    offerings: Sequence[Mapping[str, Any]], specifications: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Catalog's offerings joined with their specifications, as the shop screen lists them."""
    by_id = {str(spec.get("id")): spec for spec in specifications}
    offers = []
    for offering in offerings:
        spec = by_id.get(str((offering.get("productSpecification") or {}).get("id")), {})
        purchase = PURCHASE_BY_PRODUCT_KIND.get(str(spec.get("productKind")))
        if purchase is None:
            continue
        one_time = [
            price
            for price in offering.get("productOfferingPrice") or []
            if price.get("priceType") in ("oneTime", "recurring")
        ]
        price = (one_time[0].get("price") or {}) if one_time else {}
        offers.append(
            {
                "id": offering["id"],
                "name": offering.get("name") or offering["id"],
                "description": offering.get("description"),
                "purchase": purchase,
                "productKind": spec.get("productKind"),
                "paymentType": spec.get("paymentType"),
                "simKinds": spec.get("simKinds") or [],
                "price": {"amount": price.get("value"), "currency": price.get("unit", "ZAR")}
                if price
                else None,
                "allowance": {
                    "dataMB": spec.get("dataMB"),
                    "voiceMinutes": spec.get("voiceMinutes"),
                    "sms": spec.get("sms"),
                    "validityDays": spec.get("validityDays"),
                },
            }
        )
    return offers
