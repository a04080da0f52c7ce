"""HTTP routes of the billing-sync service: parse, hand over to a handler, map the result."""

from fastapi import APIRouter

router = APIRouter(prefix="/tmf-api/usageManagement/v4")
