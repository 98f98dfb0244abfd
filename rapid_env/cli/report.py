"""``rapid-report OUT``: rebuild ``OUT/report.html`` from a rapid-eval results store.

matplotlib and the report's code load only after the flags parsed, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn


class ReportUsageError(ValueError):
    """A bad flag: one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, exit code 2 (through :func:`main`)."""
        raise ReportUsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-report OUT``: rebuild ``OUT/report.html`` and print its path."""
    parser = _Parser(prog="rapid-report",
                     description="Rebuild OUT/report.html from a rapid-eval results store.")
    parser.add_argument("out", type=Path, help="the sweep's output folder (rapid-eval --out)")
    try:
        args = parser.parse_args(argv)
    except ReportUsageError as exc:
        print(f"rapid-report: error: {exc}", file=sys.stderr)
        return 2
    from rapid_env.eval.report import REPORT, ReportError, write_report

    try:
        path = write_report(args.out)
    except ReportError as exc:
        print(f"rapid-report: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"rapid-report: error: cannot write {args.out / REPORT} ({exc.strerror})",
              file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
