"""The package: its re-exports are the defining modules' objects, and it stays in the core layer."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import rapid_env.noise as noise

# Layers above the core that the noise package must never import.
FORBIDDEN = ("rapid_env.agents", "rapid_env.eval", "rapid_env.controller", "rapid_env.config",
             "rapid_env.wrapper")


def test_every_exported_name_is_its_defining_modules_object():
    assert sorted(noise.__all__) == sorted(set(noise.__all__))
    for name in noise.__all__:
        obj = getattr(noise, name)
        owner = getattr(obj, "__module__", None)
        if owner is not None and owner.startswith("rapid_env.noise."):
            assert getattr(importlib.import_module(owner), name) is obj


def test_names_other_code_imports_are_exported():
    used = {"Clean", "ImageNoise", "NOISE_NAMES", "PRESETS", "parse_noise", "NoisyImage",
            "CORRUPTIONS", "PixelCorruption", "corrupt", "SCENE_NAMES", "SENSOR_NAMES",
            "SensorFault"}
    assert used <= set(noise.__all__)


def test_no_module_imports_a_layer_above_the_core():
    for path in Path(noise.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for mod in names:
                assert not mod.startswith(FORBIDDEN), f"{path.name} imports {mod}"
