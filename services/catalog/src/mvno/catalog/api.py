"""HTTP routes of the catalog service: parse, hand over to a handler, map the result."""

from fastapi import APIRouter

router = APIRouter(prefix="/tmf-api/productCatalogManagement/v4")
