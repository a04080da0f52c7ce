"""HTTP routes of the simulators. One router per partner joins here as each partner is built."""

from fastapi import APIRouter

router = APIRouter(tags=["simulators"])


@router.get("/health/live", summary="The simulators are up")
async def live() -> dict[str, str]:
    return {"status": "live"}


@router.get("/health/ready", summary="The simulators answer")
async def ready() -> dict[str, str]:
    return {"status": "ready"}
