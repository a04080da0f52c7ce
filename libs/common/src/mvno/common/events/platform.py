"""Events published by the platform's own watchers (producer ``platform``): the canaries.

A canary probes one partner or one customer journey on a schedule. It publishes when a probe's
outcome turns (ok to failed, failed to ok), not on every probe, so consumers such as portal-api can
warn customers that a partner is slow or down before their orders stall, and stop warning when it
has recovered.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat

from mvno.common.events.base import EventData

PRODUCER = "platform"

ProbeTarget = Literal["network-operator", "payments", "billing-platform", "portal"]
"""What a probe watches: one of the platform's partners, or the customer portal's journey."""


class CanaryProbeChanged(EventData):
    """A probe's outcome turned; an abstract base (it sets no ``event_type``)."""

    subject_field = "probe"

    probe: str = Field(min_length=1, max_length=100)
    """The probe's stable name (``payments.authorise_void``)."""
    target: ProbeTarget
    """The partner or journey the probe watches."""
    latency_seconds: NonNegativeFloat
    """How long the probe that saw the change took."""


class CanaryFailed(CanaryProbeChanged):
    """A probe that was passing failed: the partner is down, refusing, or slower than allowed."""

    event_type = "platform.canary.failed.v1"

    reason: str = Field(min_length=1, max_length=500)
    """Why, for an operator: the status answered, a timeout, or the latency over its threshold."""
    slow: bool = False
    """True when the partner answered, but slower than the threshold: customers may wait."""


class CanaryRecovered(CanaryProbeChanged):
    """A probe that was failing passed again."""

    event_type = "platform.canary.recovered.v1"


EVENTS: tuple[type[EventData], ...] = (CanaryFailed, CanaryRecovered)
