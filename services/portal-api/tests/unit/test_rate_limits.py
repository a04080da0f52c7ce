"""The per-replica sliding-window counters behind the 429 answers."""

from __future__ import annotations

import limits
import pytest

from mvno.common.problems import Problem
from mvno.portal_api.protection import RateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 6000.0  # the start of a minute

    def __call__(self) -> float:
        return self.now


def refused(rate_limits: RateLimits, limit: limits.RateLimitItem, *key: str) -> Problem:
    with pytest.raises(Problem) as caught:
        rate_limits.check(limit, *key)
    return caught.value


def test_hits_past_the_limit_are_refused_with_when_to_come_back() -> None:
    clock = Clock()
    rate_limits = RateLimits(clock)
    limit = limits.parse("3/minute")
    for _ in range(3):
        rate_limits.check(limit, "customer", "alice")
    problem = refused(rate_limits, limit, "customer", "alice")
    assert problem.status == 429
    assert problem.slug == "too-many-requests"
    # This minute's 3 still weigh 2/3 of the limit 20 s into the next one: then one more fits.
    assert problem.headers == {"Retry-After": "80"}
    rate_limits.check(limit, "customer", "bob")  # counted apart
    rate_limits.check(limit, "ip", "alice")

    clock.now += 79
    refused(rate_limits, limit, "customer", "alice")
    clock.now += 1
    rate_limits.check(limit, "customer", "alice")
    refused(rate_limits, limit, "customer", "alice")


def test_the_window_slides_rather_than_resetting_at_once() -> None:
    clock = Clock()
    rate_limits = RateLimits(clock)
    limit = limits.parse("10/minute")
    clock.now += 50
    for _ in range(10):
        rate_limits.check(limit, "ip", "10.0.0.1")
    clock.now += 15  # a new minute began 5 s ago: the last one's 10 weigh 55/60 of it
    problem = refused(rate_limits, limit, "ip", "10.0.0.1")
    # 10 x (1 - s/60) + 1 <= 10 from s = 6 s into the new minute: a second from now.
    assert problem.headers == {"Retry-After": "1"}
    clock.now += 0.5
    refused(rate_limits, limit, "ip", "10.0.0.1")
    clock.now += 0.5
    rate_limits.check(limit, "ip", "10.0.0.1")


def test_counters_of_keys_long_gone_start_again_from_nothing() -> None:
    clock = Clock()
    rate_limits = RateLimits(clock)
    limit = limits.parse("2/minute")
    rate_limits.check(limit, "customer", "alice")
    rate_limits.check(limit, "customer", "alice")
    clock.now += 3600
    rate_limits.check(limit, "customer", "carol")  # purges what nobody used for two windows
    rate_limits.check(limit, "customer", "alice")
    rate_limits.check(limit, "customer", "alice")
    refused(rate_limits, limit, "customer", "alice")
