"""Partners' refusals as problem+json, built in one place for first answers and replays alike."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from mvno.common.problems import PROBLEM_CONTENT_TYPE, problem_body
from mvno.simulators.errors import PartnerError


def partner_problem(error: PartnerError, instance: str) -> dict[str, Any]:
    return problem_body(
        status=error.status,
        slug=error.slug,
        title=HTTPStatus(error.status).phrase,
        detail=error.detail,
        instance=instance,
        extensions=error.extensions,
    )


async def on_partner_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PartnerError)
    return JSONResponse(
        partner_problem(exc, request.url.path),
        status_code=exc.status,
        media_type=PROBLEM_CONTENT_TYPE,
    )
