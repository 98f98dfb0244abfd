"""``rapid-profile CONFIG``: count a cost profile of your own model from its config folder.

The five built-in profiles were counted from architectures written into the offline profiler;
this command counts the same way (the real ``transformers`` modules on the ``meta`` device, so no
weights and no memory) from a model's own ``config.json``: a Hugging Face OpenVLA / Prismatic
config or a LeRobot ``smolvla``, ``pi0`` or ``act`` policy config
(:mod:`rapid_env.profiler.from_config`). It writes a
profile file that ``--profile file:<json>`` accepts everywhere a profile name is. Modules whose
FLOPs could not be counted are named, and the file is written only when ``--allow-uncounted``
says that an undercounted profile is acceptable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rapid_env.cli.common import EXIT_BAD_INPUT, EXIT_OK, UsageError, make_parser

EXIT_UNCOUNTED = 1
"""Some modules' FLOPs were not counted and ``--allow-uncounted`` was not given."""


def _parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "rapid-profile",
        "Count a VLA cost profile (per-block FLOPs, weight and activation bytes, loop, KV cache) "
        "from a model's config folder on the meta device (no weights are loaded or downloaded), "
        "and write it as a JSON file for --profile file:<json>. Understands Hugging Face "
        "OpenVLA/Prismatic configs and LeRobot smolvla, pi0 and act policy configs "
        "(docs/cost_model.md).",
        examples=(
            "rapid-profile path/to/my-vla -o my-vla.json",
            "rapid-profile rapid_env/data/model_configs/smolvla --name smolvla-copy",
            "rapid-profile rapid_env/data/model_configs/act -o act.profile.json",
            "rapid-eval --profile file:my-vla.json --agents rapid,cloud-only --out runs/mine",
        ),
    )
    parser.add_argument("config", type=Path,
                        help="a folder holding config.json (or the config.json file itself)")
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help="profile file to write (default: <name>.profile.json here)")
    parser.add_argument("--name", default=None,
                        help="the profile's name (default: rapid_profile.name in the config, "
                             "else the folder's name)")
    parser.add_argument("--allow-uncounted", action="store_true",
                        help="write the profile even if some modules' FLOPs were not counted "
                             "(they are listed in the file's 'uncounted')")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-profile``: count, report, write; exit 2 on a bad config."""
    try:
        args = _parser().parse_args(argv)
    except UsageError as exc:
        print(f"rapid-profile: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from rapid_env.cost.profiles import FILE_FORMAT, load_profile_file
    from rapid_env.profiler.__main__ import summary
    from rapid_env.profiler.from_config import count_config

    try:
        counted = count_config(args.config, args.name)
    except ValueError as exc:
        print(f"rapid-profile: error: {args.config}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    prof = counted.profile
    print(summary(prof.name, prof))
    for line in counted.uncounted:
        print(f"rapid-profile: not counted: {line}", file=sys.stderr)
    if counted.uncounted and not args.allow_uncounted:
        print(
            f"rapid-profile: error: the FLOPs of {len(counted.uncounted)} module(s) were not "
            "counted (listed above), so the profile would undercount; nothing written. Rerun "
            "with --allow-uncounted to write it anyway",
            file=sys.stderr,
        )
        return EXIT_UNCOUNTED
    out = args.out if args.out is not None else Path(f"{prof.name}.profile.json")
    payload = {
        "format": FILE_FORMAT,
        "generated_by": "rapid-profile",
        "config": str(args.config),
        "config_sha256": counted.config_sha256,
        "family": counted.family,
        "uncounted": list(counted.uncounted),
        "profile": prof.to_dict(),
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=1) + "\n")
    except OSError as exc:
        print(f"rapid-profile: error: {out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    load_profile_file(out)  # what --profile file: will read: fail here, not in a sweep
    print(f"wrote {out} (use --profile file:{out})")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
