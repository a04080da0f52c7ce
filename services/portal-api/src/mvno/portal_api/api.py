"""HTTP routes of the portal-api service: parse, hand over to a handler, map the result."""

from fastapi import APIRouter

router = APIRouter(prefix="/portal/v1")
