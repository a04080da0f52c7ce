"""Liveness and readiness endpoints: ``/health/live`` and ``/health/ready``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mvno.common.problems import problem_response

Check = Callable[[], Awaitable[object]]

_log = logging.getLogger(__name__)


class NotReady(Exception):
    """Raised by a readiness check that ran and found the service not ready to serve; its
    message is the reason, shown in the readiness answer."""


async def _run_check(name: str, check: Check, limit: float) -> str | None:
    try:
        await asyncio.wait_for(check(), limit)
    except TimeoutError:
        return f"no answer within {limit:g} s"
    except NotReady as finding:
        return str(finding)
    except Exception as exc:  # a failing dependency must answer 503, whatever it raised
        _log.warning("readiness check %s failed: %s", name, exc)
        return type(exc).__name__
    return None


def health_router(checks: Mapping[str, Check], *, timeout: float = 2.0) -> APIRouter:
    """Liveness says the process serves; readiness runs every check concurrently.

    Readiness answers 503 problem+json naming each failed dependency, so a load balancer takes
    the instance out of rotation while its database or bus endpoint is unreachable.
    """
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live", summary="The process is up")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @router.get("/ready", summary="Dependencies answer", response_model=None)
    async def ready() -> JSONResponse:
        names = list(checks)
        failures = await asyncio.gather(*(_run_check(n, checks[n], timeout) for n in names))
        results = {n: (failure or "ok") for n, failure in zip(names, failures, strict=True)}
        failed = [n for n, failure in zip(names, failures, strict=True) if failure]
        if failed:
            return problem_response(
                status=503,
                slug="not-ready",
                title="Not ready",
                detail="Unavailable: " + ", ".join(failed),
                extensions={"checks": results},
            )
        return JSONResponse({"status": "ready", "checks": results})

    return router
