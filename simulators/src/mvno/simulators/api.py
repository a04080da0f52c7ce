"""The simulators' routers, listed in one place: one per partner, and the admin endpoints."""

from fastapi import APIRouter

from mvno.simulators.admin.api import router as admin
from mvno.simulators.billing.api import router as billing
from mvno.simulators.mno.api import router as mno
from mvno.simulators.payments.api import router as payments

ROUTERS: tuple[APIRouter, ...] = (mno, payments, billing, admin)
