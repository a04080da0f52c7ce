"""Base models of the simulators' HTTP bodies: camelCase on the wire, like the partners' APIs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class RequestBody(BaseModel):
    """A request body; unknown fields are refused so a client's typo does not pass silently."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ResponseBody(BaseModel):
    """An answer, built from the partner's own records."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class Health(ResponseBody):
    status: str
