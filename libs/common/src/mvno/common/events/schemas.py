"""JSON Schemas of the event contracts, and the command that keeps the committed ones current.

The committed files in ``schemas/`` (one per event type, ``<event_type>.json``) are the contract
baseline: what consumers were promised. Usage, from the workspace root::

    .venv/bin/python -m mvno.common.events.schemas --check   # exit 1 listing every difference
    .venv/bin/python -m mvno.common.events.schemas --write   # write new and additively changed

``--write`` refuses (exit 1, with the reasons, writing nothing) when a model would break its
committed schema: a breaking change needs a new version (a new class with ``.v<N+1>``, hence a new
file) while the old version stays. It never deletes a schema whose model is gone either; retiring an
event type is a deliberate act (delete the file by hand once no consumer needs it).

``--check --baseline DIR`` also compares against schemas from elsewhere, for example the main
branch's (``git archive origin/main libs/common/src/mvno/common/events/schemas | tar -x -C DIR``),
which catches a committed schema edited by hand to hide a breaking change.

Schemas are of the serialised form (``mode="serialization"``): what producers put on the wire.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mvno.common.events.base import EventData
from mvno.common.events.compatibility import breaking_changes
from mvno.common.events.registry import CONTRACTS

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
"""Where the committed schemas live (inside the package, so they ship with it)."""

SCHEMA_ID_PREFIX = "urn:mvno:event:"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMMAND = ".venv/bin/python -m mvno.common.events.schemas"

JsonSchema = dict[str, Any]


def schema_of(contract: type[EventData]) -> JsonSchema:
    """The JSON Schema of one contract's payload, with ``$id`` ``urn:mvno:event:<type>``."""
    schema = contract.model_json_schema(mode="serialization")
    schema["$id"] = SCHEMA_ID_PREFIX + contract.event_type
    schema["$schema"] = JSON_SCHEMA_DIALECT
    return schema


def generate_schemas(
    contracts: Mapping[str, type[EventData]] | None = None,
) -> dict[str, JsonSchema]:
    """Event type → JSON Schema, for every registered contract (or the ones given)."""
    contracts = CONTRACTS if contracts is None else contracts
    return {event_type: schema_of(contract) for event_type, contract in sorted(contracts.items())}


def render(schema: Mapping[str, Any]) -> str:
    """The committed text of a schema: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_path(event_type: str, directory: Path = SCHEMA_DIR) -> Path:
    """The file of one event type's schema."""
    return directory / f"{event_type}.json"


def read_schemas(directory: Path = SCHEMA_DIR) -> dict[str, JsonSchema]:
    """The schemas in ``directory`` by event type (file name without ``.json``)."""
    if not directory.is_dir():
        return {}
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


def breaking_against(
    baseline: Mapping[str, Mapping[str, Any]], generated: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Breaking changes of ``generated`` against ``baseline``, each prefixed with its event type.

    An event type in the baseline with no contract any more is reported too.
    """
    problems: list[str] = []
    for event_type, old in sorted(baseline.items()):
        new = generated.get(event_type)
        if new is None:
            problems.append(f"{event_type}: has a committed schema but no contract any more")
            continue
        problems.extend(f"{event_type}: {problem}" for problem in breaking_changes(old, new))
    return problems


def check(
    directory: Path = SCHEMA_DIR, generated: Mapping[str, JsonSchema] | None = None
) -> list[str]:
    """Every difference between the committed schemas and the models (empty when in step)."""
    generated = generate_schemas() if generated is None else generated
    problems: list[str] = []
    for event_type, schema in generated.items():
        path = schema_path(event_type, directory)
        if not path.exists():
            problems.append(f"{event_type}: no committed schema (new event type?)")
        elif path.read_text(encoding="utf-8") != render(schema):
            problems.append(f"{event_type}: committed schema differs from the model")
    problems.extend(breaking_against(read_schemas(directory), generated))
    return problems


def write(
    directory: Path = SCHEMA_DIR, generated: Mapping[str, JsonSchema] | None = None
) -> tuple[list[str], list[str]]:
    """Write new and additively changed schemas; return (written event types, refusals).

    Writes nothing at all when there is any refusal, so the directory never holds half a change.
    """
    generated = generate_schemas() if generated is None else generated
    refusals = breaking_against(read_schemas(directory), generated)
    if refusals:
        return [], refusals
    written: list[str] = []
    directory.mkdir(parents=True, exist_ok=True)
    for event_type, schema in generated.items():
        path = schema_path(event_type, directory)
        text = render(schema)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(event_type)
    return written, []


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--write`` or ``--check`` (optionally ``--baseline DIR``); see the module."""
    parser = argparse.ArgumentParser(
        prog="python -m mvno.common.events.schemas",
        description="Keep the committed JSON Schemas of the event contracts in step.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="write new/additive schemas")
    action.add_argument("--check", action="store_true", help="exit 1 on any difference")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="schema directory")
    parser.add_argument(
        "--baseline", type=Path, help="with --check: also refuse breaking changes against DIR"
    )
    args = parser.parse_args(argv)
    generated = generate_schemas()

    if args.write:
        if args.baseline is not None:
            parser.error("--baseline goes with --check")
        written, refusals = write(args.dir, generated)
        if refusals:
            print("refused: breaking changes to committed event contracts", file=sys.stderr)
            for refusal in refusals:
                print(f"  {refusal}", file=sys.stderr)
            print(
                "a breaking change needs a new version: add a new contract class with the next "
                ".v<N> and keep the old one",
                file=sys.stderr,
            )
            return 1
        for event_type in written:
            print(f"wrote {schema_path(event_type, args.dir)}")
        if not written:
            print("schemas are up to date")
        return 0

    problems = check(args.dir, generated)
    if args.baseline is not None:
        problems.extend(
            f"against {args.baseline}: {problem}"
            for problem in breaking_against(read_schemas(args.baseline), generated)
        )
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(
            f"regenerate with: {COMMAND} --write "
            "(a breaking change needs a new .v<N> contract instead)",
            file=sys.stderr,
        )
        return 1
    print(f"{len(generated)} event schemas are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
