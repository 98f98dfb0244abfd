"""The package surface: every public name importable from ``rapid_env.link``, and its layering."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import rapid_env.link

PACKAGE_DIR = Path(rapid_env.link.__file__).parent
ALLOWED_ROOTS = {"numpy", "scipy"} | set(sys.stdlib_module_names)
ALLOWED_PROJECT = ("rapid_env.registry", "rapid_env.link")

# what ``rapid_env.link`` (a single module) exposed before it became a package
LEGACY_NAMES = (
    "DIRECTIONS", "LINKS", "LINK_FORMS", "PRESETS", "ConstantLink", "Direction", "IdealLink",
    "Latency", "Link", "LinkEstimator", "LinkPreset", "Reliability", "TraceEnd", "TraceLink",
    "TransferResult", "parse_link",
)


@pytest.mark.parametrize("name", rapid_env.link.__all__)
def test_every_name_in_all_is_importable(name):
    assert getattr(rapid_env.link, name) is not None


def test_legacy_names_and_trace_and_loss_names_are_re_exported():
    wanted = set(LEGACY_NAMES) | {"load_trace", "BandwidthTrace", "bundled", "MTU_BYTES",
                                  "GilbertElliott", "GilbertElliottChannel"}
    assert wanted <= set(rapid_env.link.__all__)


def test_bundled_traces_are_found_from_the_package():
    assert rapid_env.link.TRACE_DIR == PACKAGE_DIR.parent / "data" / "traces"
    assert rapid_env.link.bundled("puffer_1.tsv").is_file()


@pytest.mark.parametrize("module", sorted(p.name for p in PACKAGE_DIR.glob("*.py")))
def test_the_package_imports_only_the_stdlib_numpy_scipy_registry_and_itself(module):
    tree = ast.parse((PACKAGE_DIR / module).read_text())
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: use absolute imports"
            imported.append(node.module or "")
    for name in imported:
        ok = name.split(".")[0] in ALLOWED_ROOTS or any(
            name == p or name.startswith(p + ".") for p in ALLOWED_PROJECT
        )
        assert ok, f"rapid_env/link/{module} imports {name}"
