"""SIM inventory: physical SIMs in stock and eSIM profiles prepared on the SM-DP+.

Every SIM is known by its ICCID: ``89`` (telecoms), ``27`` (South Africa), an issuer and a serial,
closed by a Luhn check digit. Physical SIMs have 19 digits, eSIM profiles 20.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from enum import StrEnum

from stdnum import luhn

from mvno.simulators.errors import Conflict, Invalid, NotFound

PHYSICAL_PREFIX = "892701"  # + 12 serial digits + check digit = 19 digits
ESIM_PREFIX = "892702"  # + 13 serial digits + check digit = 20 digits
MATCHING_ID_ALPHABET = string.ascii_uppercase + string.digits


class SimKind(StrEnum):
    PHYSICAL = "physical"
    ESIM = "esim"


class SimStatus(StrEnum):
    AVAILABLE = "available"  # a physical SIM in stock
    ALLOCATED = "allocated"  # an eSIM profile prepared for download
    ACTIVE = "active"  # in a subscription
    RETIRED = "retired"  # swapped out or its line terminated; never used again


@dataclass
class Sim:
    iccid: str
    kind: SimKind
    status: SimStatus
    matching_id: str | None = None
    activation_code: str | None = None
    subscription_id: str | None = None


def with_check_digit(body: str) -> str:
    return body + luhn.calc_check_digit(body)


def iccid_problem(iccid: str) -> str | None:
    """Why ``iccid`` is not a valid ICCID, or None when it is."""
    if not iccid.isascii() or not iccid.isdigit():
        return "an ICCID has digits only"
    if not 19 <= len(iccid) <= 20:
        return "an ICCID has 19 or 20 digits"
    if not iccid.startswith("89"):
        return "an ICCID starts with 89 (telecommunications)"
    if not luhn.is_valid(iccid):
        return "the ICCID's Luhn check digit is wrong"
    return None


class SimInventory:
    def __init__(self, rng: random.Random, *, physical_stock: int, smdp_host: str) -> None:
        self.rng = rng
        self.smdp_host = smdp_host
        self.sims: dict[str, Sim] = {}
        while len(self.sims) < physical_stock:
            iccid = with_check_digit(PHYSICAL_PREFIX + f"{rng.randrange(10**12):012d}")
            self.sims.setdefault(iccid, Sim(iccid, SimKind.PHYSICAL, SimStatus.AVAILABLE))

    def sim(self, iccid: str) -> Sim:
        problem = iccid_problem(iccid)
        if problem:
            raise Invalid("iccid-invalid", f"{iccid} is not a valid ICCID: {problem}")
        try:
            return self.sims[iccid]
        except KeyError:
            raise NotFound("sim-not-found", f"No SIM with ICCID {iccid}") from None

    def allocate_esim(self) -> Sim:
        """Prepare an eSIM profile; the customer's device downloads it with the activation code."""
        while True:
            iccid = with_check_digit(ESIM_PREFIX + f"{self.rng.randrange(10**13):013d}")
            if iccid not in self.sims:
                break
        matching_id = "-".join(
            "".join(self.rng.choices(MATCHING_ID_ALPHABET, k=5)) for _ in range(5)
        )
        sim = Sim(
            iccid=iccid,
            kind=SimKind.ESIM,
            status=SimStatus.ALLOCATED,
            matching_id=matching_id,
            activation_code=f"LPA:1${self.smdp_host}${matching_id}",
        )
        self.sims[iccid] = sim
        return sim

    def take_for(self, iccid: str, subscription_id: str) -> Sim:
        """Put a SIM into a subscription: a physical one from stock or an allocated eSIM profile."""
        sim = self.sim(iccid)
        if sim.status not in (SimStatus.AVAILABLE, SimStatus.ALLOCATED):
            raise Conflict(
                "sim-unavailable", f"SIM {iccid} is {sim.status.value}", simStatus=sim.status.value
            )
        sim.status = SimStatus.ACTIVE
        sim.subscription_id = subscription_id
        return sim

    def give_back(self, sim: Sim) -> None:
        """An activation that failed leaves the SIM as it was before."""
        sim.status = SimStatus.AVAILABLE if sim.kind is SimKind.PHYSICAL else SimStatus.ALLOCATED
        sim.subscription_id = None

    def retire(self, sim: Sim) -> None:
        sim.status = SimStatus.RETIRED

    def find(self, *, kind: SimKind | None, status: SimStatus | None, limit: int) -> list[Sim]:
        chosen = []
        for sim in self.sims.values():
            if (kind is None or sim.kind is kind) and (status is None or sim.status is status):
                chosen.append(sim)
                if len(chosen) == limit:
                    break
        return chosen
