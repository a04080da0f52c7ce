"""``python -m mvno.common.migrations MIGRATIONS MESSAGE``: write a service's next revision."""

from __future__ import annotations

import argparse
from pathlib import Path

from mvno.common.migrations import new_revision


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mvno.common.migrations")
    parser.add_argument("migrations", type=Path, help="the service's migrations folder")
    parser.add_argument("message", help="what the revision does")
    arguments = parser.parse_args()
    print(new_revision(arguments.migrations, arguments.message))


if __name__ == "__main__":
    main()
