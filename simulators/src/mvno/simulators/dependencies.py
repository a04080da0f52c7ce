"""What every partner route shares: fault injection, idempotent execution, the current state.

A partner's operation is named by its route: the first path segment is the partner (``mno``,
``payments``, ``billing``) and the route's name (its function's name) is the operation, the
names the fault table and the idempotency store are keyed by.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute

from mvno.common.problems import PROBLEM_CONTENT_TYPE, Problem
from mvno.simulators.errors import PartnerError
from mvno.simulators.faults import Outcome
from mvno.simulators.idempotency import StoredAnswer, fingerprint
from mvno.simulators.problems import partner_problem
from mvno.simulators.simulator import Simulator

PARTNERS = ("mno", "payments", "billing")
REPLAYED_HEADER = "Idempotent-Replayed"

Model = TypeVar("Model", bound=BaseModel)


# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` one in a worker thread,
# and that hop alone costs more than the rest of a simulator call.
# They read the simulator from the request rather than through another dependency: each level
# of dependencies FastAPI resolves costs CPU on every call.


def simulator_of(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator


async def get_simulator(request: Request) -> Simulator:
    return simulator_of(request)


SimulatorDep = Annotated[Simulator, Depends(get_simulator)]


def operation_of(route: BaseRoute) -> tuple[str, str] | None:
    if not isinstance(route, APIRoute):
        return None
    partner = route.path_format.split("/")[1]
    return (partner, route.name) if partner in PARTNERS else None


def operations_of(routes: Iterable[BaseRoute]) -> dict[str, frozenset[str]]:
    """Each partner's operation names, read from the app's routes."""
    found: dict[str, set[str]] = {partner: set() for partner in PARTNERS}
    for route in routes:
        operation = operation_of(route)
        if operation:
            found[operation[0]].add(operation[1])
    return {partner: frozenset(names) for partner, names in found.items()}


def _operation(request: Request) -> tuple[str, str]:
    operation = operation_of(request.scope["route"])
    assert operation is not None, "a partner dependency on a route that is not a partner's"
    return operation


async def hold(request: Request, seconds: float) -> None:
    """Keep the call unanswered for ``seconds``, or until the client gives up and goes away."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_disconnected(request), seconds)
    raise Problem(504, "timeout", "Injected timeout: the partner did not answer in time")


async def _disconnected(request: Request) -> None:
    # The body has been read (or there is none), so the server's next message is the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def inject_faults(request: Request) -> None:
    """Every partner route's first dependency: latency, errors, timeouts and outages."""
    partner, operation = _operation(request)
    verdict = simulator_of(request).faults.verdict(partner, operation)
    if verdict is None:
        return
    if verdict.outcome is Outcome.OUTAGE:
        raise Problem(
            503,
            "partner-outage",
            f"Injected outage: the {partner} partner is down",
            headers={"Retry-After": "1"},
        )
    if verdict.outcome is Outcome.TIMEOUT:
        await hold(request, verdict.hold_seconds)
    if verdict.delay_seconds:
        await asyncio.sleep(verdict.delay_seconds)
    if verdict.outcome is Outcome.ERROR:
        raise Problem(verdict.status, "injected-error", f"Injected {verdict.status} error")


class Idempotent:
    """Runs a mutating call once per Idempotency-Key and answers repeats from the store.

    Refusals are stored like successes (the same key gets the same decline); injected faults
    happen before the call runs, so they are not stored and a retry gets a real answer.
    """

    def __init__(self, request: Request, simulator: Simulator, key: str | None) -> None:
        self.request = request
        self.simulator = simulator
        self.key = key

    async def run(
        self,
        body: BaseModel | None,
        action: Callable[[], Model],
        *,
        status_code: int | Callable[[Model], int] = 201,
    ) -> Response:
        partner, operation = _operation(self.request)
        state = self.simulator.state
        now = state.clock.now()
        path = self.request.url.path
        scope = (partner, operation, self.key) if self.key else None
        request_print = ""
        if scope is not None:
            request_print = fingerprint(path, body.model_dump_json().encode() if body else b"")
            stored = state.idempotency.get(scope, now)
            if stored is not None:
                return self._replay(stored, request_print)
        try:
            result = action()
        except PartnerError as error:
            problem = json.dumps(partner_problem(error, path)).encode()
            answer = StoredAnswer(request_print, error.status, problem, PROBLEM_CONTENT_TYPE, now)
        else:
            status = status_code if isinstance(status_code, int) else status_code(result)
            content = result.model_dump_json(by_alias=True).encode()
            answer = StoredAnswer(request_print, status, content, "application/json", now)
        if scope is not None:
            state.idempotency.put(scope, answer)
        lost = self.simulator.faults.lost_response_hold(partner, operation)
        if lost is not None:
            await hold(self.request, lost)
        return Response(answer.body, status_code=answer.status, media_type=answer.media_type)

    def _replay(self, stored: StoredAnswer, request_print: str) -> Response:
        if stored.fingerprint != request_print:
            raise Problem(
                422,
                "idempotency-key-reused",
                "This Idempotency-Key was used for a different request",
            )
        return Response(
            stored.body,
            status_code=stored.status,
            media_type=stored.media_type,
            headers={REPLAYED_HEADER: "true"},
        )


async def idempotent(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Repeats with the same key get the first answer again",
        ),
    ] = None,
) -> Idempotent:
    return Idempotent(request, simulator_of(request), idempotency_key)


IdempotentDep = Annotated[Idempotent, Depends(idempotent)]
