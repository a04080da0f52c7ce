"""Scanners for the deployment tests, each run as its own program.

checkov pins its own dependencies (boto3 among them) and cannot share the project's lock, so it
lives in its own virtual environment under .tools/, created once with the project's uv and reused
by every later run (CI's clean clone creates it in about a minute).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKOV_VERSION = "3.3.30"
CHECKOV_ENV = ROOT / ".tools" / f"checkov-{CHECKOV_VERSION}"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _install_checkov() -> Path:
    binary = CHECKOV_ENV / "bin" / "checkov"
    if binary.exists():
        return binary
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    python = CHECKOV_ENV / "bin" / "python"
    # In place (a virtual environment's scripts name its folder); removed again if it fails, so a
    # half-made one is never taken for a finished one.
    for command in (
        [uv, "venv", "--quiet", "--python", sys.executable, str(CHECKOV_ENV)],
        [uv, "pip", "install", "--quiet", "--python", str(python), f"checkov=={CHECKOV_VERSION}"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            shutil.rmtree(CHECKOV_ENV, ignore_errors=True)
            pytest.fail(f"installing checkov failed: {' '.join(command)}\n{result.stderr}")
    return binary


@dataclass(frozen=True)
class CheckovReport:
    """What checkov found, over every framework it ran."""

    failed: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    passed: int
    passed_checks: list[dict[str, Any]]

    def failed_ids(self) -> set[str]:
        return {check["check_id"] for check in self.failed}

    def of(self, path: Path) -> CheckovReport:
        """The part of a report about the files under ``path`` (several were scanned at once)."""

        def inside(check: dict[str, Any]) -> bool:
            scanned = Path(check["repo_file_path"].lstrip("/"))
            absolute = Path(check.get("file_abs_path") or "")
            return path in (scanned, absolute) or path in absolute.parents

        return CheckovReport(
            failed=[c for c in self.failed if inside(c)],
            skipped=[c for c in self.skipped if inside(c)],
            passed=sum(1 for c in self.passed_checks if inside(c)),
            passed_checks=[c for c in self.passed_checks if inside(c)],
        )

    def describe_failures(self) -> str:
        return "\n".join(
            f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:"
            f"{c['file_line_range']})"
            for c in self.failed
        )

    def unexplained_skips(self) -> list[str]:
        """Skips without a written reason (checkov fills in "No comment provided")."""
        return [
            f"{c['check_id']} on {c['resource']}"
            for c in self.skipped
            if not (c["check_result"].get("suppress_comment") or "").strip()
            or c["check_result"]["suppress_comment"] == "No comment provided"
        ]


Checkov = Callable[..., CheckovReport]


@pytest.fixture(scope="session")
def checkov() -> Checkov:
    """``checkov(framework, *paths)``: scan offline and return the parsed report."""
    binary = _install_checkov()

    def scan(frameworks: str, *paths: Path, extra: Sequence[str] = ()) -> CheckovReport:
        """``frameworks``: one or several, space-separated ("kubernetes dockerfile")."""
        command = [str(binary), "--framework", *frameworks.split()]
        command += ["--output", "json", "--skip-download"]
        for path in paths:
            command += ["--directory" if path.is_dir() else "--file", str(path)]
        result = subprocess.run(
            [*command, *extra],
            capture_output=True,
            text=True,
            timeout=300,
            # Offline: no download of the guidelines' mapping, no telemetry.
            env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": ""},
            cwd=ROOT,
            check=False,
        )
        # Exit 1 means "failed checks", which the tests look at; anything else is a crash.
        assert result.returncode in (0, 1), result.stderr[-4000:]
        # One JSON document per scanned directory, one after another (a list for several frameworks).
        reports: list[dict[str, Any]] = []
        decoder, text, position = json.JSONDecoder(), result.stdout, 0
        while text[position:].strip():
            position += len(text[position:]) - len(text[position:].lstrip())
            document, position = decoder.raw_decode(text, position)
            reports += document if isinstance(document, list) else [document]
        failed: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        passed: list[dict[str, Any]] = []
        for report in reports:
            if "results" not in report:  # {"passed": 0, "failed": 0, ...} when nothing was found
                continue
            failed += report["results"]["failed_checks"]
            skipped += report["results"]["skipped_checks"]
            passed += report["results"]["passed_checks"]
        assert passed or failed, f"checkov checked nothing in {paths}"
        return CheckovReport(
            failed=failed, skipped=skipped, passed=len(passed), passed_checks=passed
        )

    return scan


@pytest.fixture(scope="session")
def insecure_fixtures_report(checkov: Checkov) -> CheckovReport:
    """One checkov run over every deliberately bad fixture (each run costs seconds of start-up);
    each test looks at its own file with ``.of(path)``."""
    return checkov(
        "terraform kubernetes dockerfile",
        FIXTURES / "terraform-insecure" / "main.tf",
        FIXTURES / "terraform-unexplained-skip" / "main.tf",
        FIXTURES / "k8s-insecure.yaml",
        FIXTURES / "Dockerfile.insecure",
    )
