"""TM Forum API conventions every TMF-aligned service shares: camelCase models with ``@type``,
entity references, ids, ``fields=`` attribute selection.

Conventions only; what a resource holds stays in its service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from mvno.common.problems import Problem

ALWAYS_RETURNED = frozenset({"id", "href", "@type"})

ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
"""Every resource id: plain enough for URLs and logs, and no byte PostgreSQL refuses (NUL)."""

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
PathId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]

PAGE_HEADERS: dict[str, Any] = {
    "X-Total-Count": {"description": "How many items match", "schema": {"type": "integer"}},
    "X-Result-Count": {
        "description": "How many items this page holds",
        "schema": {"type": "integer"},
    },
}
"""The pagination headers of every list answer, as OpenAPI describes them."""


def page_headers(total: int, count: int) -> dict[str, str]:
    """The pagination headers of a page of ``count`` items out of ``total`` matching."""
    return {"X-Total-Count": str(total), "X-Result-Count": str(count)}


class TmfInput(BaseModel):
    """A request body: camelCase members; unknown ones refused, so a typo is a 422 rather than a
    silently ignored change. TMF's polymorphism members are accepted and ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    not_null: ClassVar[tuple[str, ...]] = ()
    """Members a merge patch may leave out but not set to ``null``."""

    type_: str | None = Field(default=None, alias="@type")
    base_type: str | None = Field(default=None, alias="@baseType")
    schema_location: str | None = Field(default=None, alias="@schemaLocation")

    @model_validator(mode="after")
    def _not_null(self) -> TmfInput:
        for name in self.not_null:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{to_camel(name)} cannot be null")
        return self


class TmfOutput(BaseModel):
    """An answer body: camelCase members."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class TmfRef(TmfInput):
    """A reference to another entity, as a request names it."""

    id: Id
    href: str | None = None
    name: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as its JSON answer: members by their TMF names, empty ones left out."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def members_of(model: type[BaseModel]) -> frozenset[str]:
    """The member names ``fields=`` may ask for."""
    return frozenset(field.alias or name for name, field in model.model_fields.items())


def parse_fields(value: str | None, allowed: frozenset[str]) -> frozenset[str] | None:
    """The members ``fields=`` asks for; ``None`` for all. Unknown names are a 400 problem."""
    if value is None or not value.strip():
        return None
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    if unknown := sorted(names - allowed):
        raise Problem(
            400,
            "unknown-field",
            f"fields= names members this resource does not have: {', '.join(unknown)}",
            allowed=sorted(allowed),
        )
    return names


def select_fields(item: Mapping[str, Any], fields: frozenset[str] | None) -> dict[str, Any]:
    """Keep the members named in ``fields`` (and ``id``, ``href``, ``@type``, always)."""
    if fields is None:
        return dict(item)
    return {key: value for key, value in item.items() if key in fields or key in ALWAYS_RETURNED}
