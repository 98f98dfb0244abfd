"""``rapid-report OUT [--baseline AGENT]``: rebuild ``OUT/report.html`` and ``OUT/paired.csv``.

Both come from a rapid-eval results store's records alone; ``--baseline`` picks the agent the
paired comparison compares every other agent with (default: the sweep's first agent). A line of
``episodes.jsonl`` that is damaged (not UTF-8, not a JSON object, torn) or not to be trusted (its
``record_digest`` or ``episode_key`` does not match, :mod:`rapid_env.eval.store`) is named on
stderr with its line number and left out; the exit code stays 0.

matplotlib and the report's code load only after the flags parsed, so ``--help`` answers at once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from rapid_env.cli.common import EXIT_BAD_INPUT, UsageError, make_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-report OUT``: rebuild the report and paired.csv; print its path."""
    parser = make_parser("rapid-report", "Rebuild OUT/report.html and OUT/paired.csv from a "
                         "rapid-eval results store.", examples=(
                             "rapid-report runs/mine",
                             "rapid-report runs/mine --baseline cloud-only",
                             "rapid-report runs/study --baseline 'rapid(high_threshold=6)'",
                         ))
    parser.add_argument("out", type=Path, help="the sweep's output folder (rapid-eval --out)")
    parser.add_argument("--baseline", default=None, metavar="AGENT",
                        help="the agent the paired comparison (the report and OUT/paired.csv) "
                             "compares every other agent with (default: the sweep's first)")
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"rapid-report: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from rapid_env.eval.paired import write_paired
    from rapid_env.eval.report import REPORT, ReportError, read_store, sweep_agents, write_report
    from rapid_env.eval.store import read_records
    from rapid_env.eval.summary import dedupe

    try:
        manifest, _, _ = read_store(args.out)
        raw, problems = read_records(args.out, manifest)
        for problem in problems:  # damaged or untrusted lines: named, left out of the report
            print(f"rapid-report: {problem}", file=sys.stderr)
        path = write_report(args.out, args.baseline)
        records, _ = dedupe(raw)
        write_paired(records, args.out, args.baseline, sweep_agents(manifest, records))
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
