"""TM Forum API conventions every TMF-aligned service shares: ``fields=`` attribute selection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mvno.common.problems import Problem

ALWAYS_RETURNED = frozenset({"id", "href", "@type"})


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
