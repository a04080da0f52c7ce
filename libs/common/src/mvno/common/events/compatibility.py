"""Whether a new JSON Schema of an event type breaks consumers of the old one.

An event outlives the code that published it: it waits in queues and DLQs, is redriven, and during
a rolling deploy old and new producers and consumers run side by side. So a change must let
consumers built on the new schema read old events, and consumers built on the old schema read new
events (ignoring fields they do not know).

Breaking (reported by :func:`breaking_changes`, one line each, with the property's path):

* a property removed;
* a property retyped: its set of JSON types changed (``string`` → ``integer``, a decimal string →
  ``number``, ``format`` ``date-time`` → ``date``, a value that may now be ``null`` or no longer
  may), compared after resolving ``$ref`` into ``$defs`` and splitting ``anyOf``/``oneOf``;
* a validation constraint changed (``pattern``, ``minLength``, ``maximum``, ...);
* an enum value removed, or a free value newly restricted to an enum or ``const``;
* a property newly required, or added as required (events published before lack it), or no longer
  required (consumers may rely on it being present);
* the same rules inside nested objects, array items and map values.

Not breaking (additive):

* a new optional property;
* a new enum value (or an enum opened to any value of the same type). Consumers parse with the
  contract models, so the consumers must be deployed with the new models before producers publish
  the new value;
* a new event type; a change of annotations only (``title``, ``description``, ``default``, ...).

The checker reads the keywords pydantic emits; other keywords are not compared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]

CONSTRAINT_KEYWORDS = (
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
"""Validation keywords whose change, either way, is breaking: tighter refuses old events, looser
lets through values old consumers refuse."""

_JSON_TYPE_OF = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    type(None): "null",
}


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Every breaking difference from ``old_schema`` to ``new_schema`` (empty when compatible).

    Both are JSON Schemas of one event type as pydantic generates them (``$defs`` at the root).
    """
    checker = _Checker(old_schema, new_schema)
    checker.compare(old_schema, new_schema, "")
    return checker.problems


class _Checker:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.problems: list[str] = []
        # Pairs of $refs being compared, so a recursive model does not recurse forever.
        self._in_progress: set[tuple[str, str]] = set()

    def report(self, path: str, message: str) -> None:
        self.problems.append(f"{_where(path)}: {message}")

    def compare(self, old: Schema, new: Schema, path: str) -> None:
        old_alternatives = _by_kind(_alternatives(old, self.old_root))
        new_alternatives = _by_kind(_alternatives(new, self.new_root))
        if old_alternatives.keys() != new_alternatives.keys():
            self.report(
                path,
                f"type changed from {_describe(old_alternatives)} to {_describe(new_alternatives)}",
            )
        for kind in old_alternatives.keys() & new_alternatives.keys():
            old_ref, old_schema = old_alternatives[kind]
            new_ref, new_schema = new_alternatives[kind]
            if old_ref is None or new_ref is None:
                self._compare_same_kind(old_schema, new_schema, path)
            elif (old_ref, new_ref) not in self._in_progress:
                self._in_progress.add((old_ref, new_ref))
                try:
                    self._compare_same_kind(old_schema, new_schema, path)
                finally:
                    self._in_progress.discard((old_ref, new_ref))

    def _compare_same_kind(self, old: Schema, new: Schema, path: str) -> None:
        self._compare_values(old, new, path)
        for keyword in CONSTRAINT_KEYWORDS:
            if old.get(keyword) != new.get(keyword):
                self.report(
                    path,
                    f"constraint {keyword} changed from {_show(old.get(keyword))} "
                    f"to {_show(new.get(keyword))}",
                )
        if "properties" in old or "properties" in new:
            self._compare_objects(old, new, path)
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
            self.compare(old_extra, new_extra, f"{path}{{}}")
        elif isinstance(old_extra, Mapping) != isinstance(new_extra, Mapping):
            self.report(path, "map values changed to or from a fixed set of properties")
        if "items" in old or "items" in new:
            self.compare(old.get("items", {}), new.get("items", {}), f"{path}[]")
        old_tuple, new_tuple = old.get("prefixItems", []), new.get("prefixItems", [])
        if len(old_tuple) != len(new_tuple):
            self.report(path, f"tuple length changed from {len(old_tuple)} to {len(new_tuple)}")
        for index, (old_item, new_item) in enumerate(zip(old_tuple, new_tuple, strict=False)):
            self.compare(old_item, new_item, f"{path}[{index}]")

    def _compare_values(self, old: Schema, new: Schema, path: str) -> None:
        old_values, new_values = _allowed_values(old), _allowed_values(new)
        if old_values is None and new_values is not None:
            self.report(path, f"now restricted to {_show_values(new_values)}")
        elif old_values is not None and new_values is not None:
            removed = old_values - new_values
            if removed:
                self.report(path, f"enum value(s) removed: {_show_values(removed)}")
        # Old values listed, new any value of the type: a widening, additive like a new value.

    def _compare_objects(self, old: Schema, new: Schema, path: str) -> None:
        old_properties: Mapping[str, Schema] = old.get("properties", {})
        new_properties: Mapping[str, Schema] = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name, old_property in old_properties.items():
            child = f"{path}.{name}" if path else name
            if name not in new_properties:
                self.report(child, "property removed")
                continue
            if name in new_required and name not in old_required:
                self.report(child, "newly required (events published before may lack it)")
            if name in old_required and name not in new_required:
                self.report(child, "no longer required (consumers may rely on it being present)")
            self.compare(old_property, new_properties[name], child)
        for name in new_properties.keys() - old_properties.keys():
            if name in new_required:
                child = f"{path}.{name}" if path else name
                self.report(
                    child, "added as required (events published before lack it; make it optional)"
                )


def _where(path: str) -> str:
    return f"property {path!r}" if path else "the event"


def _resolve(schema: Schema, root: Schema) -> tuple[str | None, Schema]:
    """Follow ``$ref`` (and a lone ``allOf`` wrapper) to the schema it names, keeping siblings.

    Returns the first ``$ref`` followed (``None`` if none) with the resolved schema.
    """
    first_ref: str | None = None
    seen: set[str] = set()
    while True:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                raise ValueError(f"$ref cycle at {ref}")
            seen.add(ref)
            first_ref = first_ref or ref
            siblings = {key: value for key, value in schema.items() if key != "$ref"}
            schema = {**_pointer(root, ref), **siblings}
            continue
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            siblings = {key: value for key, value in schema.items() if key != "allOf"}
            schema = {**all_of[0], **siblings}
            continue
        return first_ref, schema


def _pointer(root: Schema, ref: str) -> Schema:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, not {ref!r}")
    target: Any = root
    for token in ref[2:].split("/"):
        target = target[token.replace("~1", "/").replace("~0", "~")]
    if not isinstance(target, Mapping):
        raise ValueError(f"$ref {ref!r} does not name a schema")
    return target


_Alternative = tuple[str | None, Schema]
"""A schema a value may match, with the ``$ref`` it was reached through (for recursion)."""


def _alternatives(schema: Schema, root: Schema) -> list[_Alternative]:
    """The schemas a value may match, with unions (``anyOf``, ``oneOf``, type lists) flattened."""
    ref, schema = _resolve(schema, root)
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            options: list[_Alternative] = []
            for option in schema[keyword]:
                options.extend(_alternatives(option, root))
            return options
    types = schema.get("type")
    if isinstance(types, list):
        return [(ref, {**schema, "type": one}) for one in types]
    return [(ref, schema)]


def _by_kind(alternatives: list[_Alternative]) -> dict[tuple[str, str | None], _Alternative]:
    """Key each alternative by JSON type and format (objects in a union of several: by title)."""
    objects = sum(1 for _, schema in alternatives if _json_type(schema) == "object")
    keyed: dict[tuple[str, str | None], _Alternative] = {}
    for ref, schema in alternatives:
        json_type = _json_type(schema)
        if json_type == "object":
            # A lone object is the same object whatever its model is called; several in one union
            # are told apart by title.
            detail = schema.get("title") if objects > 1 else None
        else:
            detail = schema.get("format")
        keyed[(json_type, detail)] = (ref, schema)
    return keyed


def _json_type(schema: Schema) -> str:
    declared = schema.get("type")
    if isinstance(declared, str):
        return declared
    values = _allowed_values(schema)
    if values:
        kinds = {_JSON_TYPE_OF.get(type(json.loads(value)), "object") for value in values}
        if len(kinds) == 1:
            return kinds.pop()
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "any"


def _allowed_values(schema: Schema) -> set[str] | None:
    """The ``enum``/``const`` values as canonical JSON texts, or ``None`` when unrestricted."""
    if "const" in schema:
        return {json.dumps(schema["const"], sort_keys=True)}
    if "enum" in schema:
        return {json.dumps(value, sort_keys=True) for value in schema["enum"]}
    return None


def _describe(alternatives: Mapping[tuple[str, str | None], _Alternative]) -> str:
    names = sorted(f"{kind} ({detail})" if detail else kind for kind, detail in alternatives)
    return " | ".join(names) or "nothing"


def _show(value: Any) -> str:
    return "none" if value is None else json.dumps(value)


def _show_values(values: set[str]) -> str:
    return ", ".join(sorted(values))
