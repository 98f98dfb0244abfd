"""Run the registered builders and (re)write the profile cache the runtime reads.

Counting is deterministic (shapes only, on the ``meta`` device), so rewriting an unchanged
architecture reproduces ``rapid_env/data/profiles.json`` byte for byte.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rapid_env.cost.profiles import PROFILES_JSON, WRITE_COMMAND, ArchProfile
from rapid_env.profiler.registry import BUILDERS, Builder
from rapid_env.registry import UnknownNameError

BUILDER_MODULES = (
    "rapid_env.profiler.arch_openvla",
    "rapid_env.profiler.arch_pi0",
    "rapid_env.profiler.arch_smolvla",
    "rapid_env.profiler.arch_octo",
)
"""Modules whose ``@profile_builder`` functions register the profiles, in registry order."""


def load_builders() -> dict[str, Builder]:
    """Import every builder module (registering its profiles); the builders by name."""
    for module in BUILDER_MODULES:
        importlib.import_module(module)
    return dict(BUILDERS)


def build_profiles(names: Iterable[str] | None = None) -> dict[str, ArchProfile]:
    """Count profiles from their architectures (slow: imports torch and transformers).

    Raises:
        UnknownNameError: a name no builder counts (the message lists the ones that do).
    """
    builders = load_builders()
    selected = list(builders) if names is None else list(names)
    for name in selected:
        if name not in builders:
            raise UnknownNameError("profile", name, list(builders))
    return {name: builders[name]() for name in selected}


def write_profiles(path: Path | str | None = None, names: Iterable[str] | None = None) -> Path:
    """Regenerate the cache. Profiles not rebuilt are kept as they were in an existing file."""
    target = Path(path) if path is not None else PROFILES_JSON
    existing: dict[str, Any] = {}
    if target.exists():
        existing = json.loads(target.read_text()).get("profiles", {})
    for name, built in build_profiles(names).items():
        existing[name] = built.to_dict()
    payload = {
        "generated_by": WRITE_COMMAND,
        "note": "Counted on the meta device from transformers architectures; do not edit by hand.",
        "profiles": {name: existing[name] for name in sorted(existing)},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=1) + "\n")
    return target
