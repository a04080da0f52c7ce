"""HTTP routes of the orders service: parse, hand over to a handler, map the result."""

from fastapi import APIRouter

router = APIRouter(prefix="/tmf-api/productOrderingManagement/v4")
