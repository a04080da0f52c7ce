"""The "my lines" answer is rendered without building pydantic models; it must be exactly what
``LinesRead.model_dump_json(by_alias=True)`` would have written."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from mvno.portal_api.schemas import BalanceRead, LineRead, LinesRead, wire_keys
from mvno.portal_api.screens import _with_balances, render_lines

BUCKETS = [
    {"usageType": "airtime", "remainingValue": {"amount": 12.5, "units": "ZAR"}},
    {
        "usageType": "data",
        "name": "1 GB",
        "remainingValue": {"amount": 700, "units": "MB"},
        "initialValue": {"amount": 1024, "units": "MB"},
        "validFor": {"endDateTime": "2026-12-31T23:59:59Z"},
    },
    {"usageType": "voice", "status": "expired", "remainingValue": {"amount": 3, "units": "min"}},
]


def row(subscription_id: str, **values: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "subscription_id": subscription_id,
        "customer_id": "c-1",
        "msisdn": "27820000001",
        "offering_id": "starter-esim",
        "payment_type": "prepaid",
        "sim_kind": "eSIM",
        "status": "active",
        "order_id": "o-1",
        "activated_at": now - timedelta(days=3),
        "updated_at": now,
        "buckets": None,
        "fetched_at": None,
        "invalidated_at": None,
    } | values


def views_of(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    context = SimpleNamespace(
        settings=SimpleNamespace(balance_fresh_seconds=30),
        # billing-sync resting: the copies are shown as they are, nothing is asked for
        upstreams=SimpleNamespace(resting=lambda _name: True),
    )
    views, missing, _ = asyncio.run(_with_balances(context, rows))  # type: ignore[arg-type]
    return views, missing


def as_pydantic_would(views: list[dict[str, Any]], missing: list[str]) -> bytes:
    return (
        LinesRead(
            lines=[LineRead.model_validate(view) for view in views],
            degraded=bool(missing),
            missing=missing,
        )
        .model_dump_json(by_alias=True)
        .encode()
    )


def test_current_stale_unavailable_and_terminated_lines_render_as_the_schema_does() -> None:
    now = datetime.now(UTC)
    rows = [
        row("current", buckets=BUCKETS, fetched_at=now - timedelta(seconds=5)),
        row("stale", buckets=BUCKETS[:1], fetched_at=now - timedelta(minutes=5)),
        row("invalidated", buckets=[], fetched_at=now, invalidated_at=now),
        row("never-read", msisdn=None, activated_at=None, sim_kind=None),
        row("terminated", status="terminated"),
    ]
    views, missing = views_of(rows)
    body = render_lines(views, missing)
    assert body == as_pydantic_would(views, missing)
    answer = json.loads(body)
    assert answer["degraded"] is True
    assert answer["missing"] == ["balances"]
    statuses = [line["balance"]["status"] for line in answer["lines"]]
    assert statuses == ["current", "stale", "stale", "unavailable", "current"]
    current = answer["lines"][0]["balance"]
    assert current["airtime"] == {"amount": 12.5, "currency": "ZAR"}
    assert current["dataMB"] == 700.0
    assert current["voiceMinutes"] == 0.0
    assert [a["expiresAt"] for a in current["allowances"]] == ["2026-12-31T23:59:59Z", None]


def test_a_screen_with_every_balance_current_is_not_degraded() -> None:
    views, missing = views_of([row("a", buckets=BUCKETS, fetched_at=datetime.now(UTC))])
    body = render_lines(views, missing)
    assert body == as_pydantic_would(views, missing)
    assert json.loads(body)["degraded"] is False


def test_a_customer_without_lines_gets_an_empty_screen() -> None:
    assert render_lines([], []) == as_pydantic_would([], [])


def test_the_rendered_keys_are_the_models_aliases() -> None:
    keys = wire_keys(BalanceRead)
    assert (keys.as_of, keys.data_mb, keys.voice_minutes) == ("asOf", "dataMB", "voiceMinutes")
    with pytest.raises(AttributeError):
        keys.data_gb  # noqa: B018  # a key the model does not have is an error, not a new key
