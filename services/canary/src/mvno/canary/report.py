"""Probe results as a table for people and as JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mvno.canary.domain.model import ProbeResult

COLUMNS = ("probe", "result", "latency", "reason")


def as_dicts(results: Sequence[ProbeResult]) -> list[dict[str, Any]]:
    return [
        {
            "probe": r.probe,
            "target": r.target,
            "result": r.outcome.value,
            "latency_seconds": round(r.latency_seconds, 3),
            "reason": r.reason,
        }
        for r in results
    ]


def as_json(results: Sequence[ProbeResult]) -> str:
    return json.dumps({"ok": all(r.ok for r in results), "probes": as_dicts(results)}, indent=2)


def as_table(results: Sequence[ProbeResult]) -> str:
    rows = [
        (r.probe, r.outcome.value, f"{r.latency_seconds * 1000:.0f} ms", r.reason or "-")
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [COLUMNS, *rows]
    ]
    failed = sum(1 for r in results if not r.ok)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)
