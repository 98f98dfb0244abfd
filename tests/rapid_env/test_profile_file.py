"""``file:<json>`` profiles: what rapid-profile writes, read back and checked field by field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rapid_env.build import validate_core_names
from rapid_env.config import EnvConfig
from rapid_env.cost import PROFILES, build_cost_model, check_profile, load_profile_file
from rapid_env.cost.profiles import (
    FILE_FORMAT,
    ProfileFileError,
    load_profile,
    profile_digest,
    profile_file_digest,
    read_cache,
)
from rapid_env.registry import UnknownNameError, first_alias


def payload(name: str = "smolvla") -> dict[str, Any]:
    """A profile file as rapid-profile writes it, around a shipped profile."""
    return {"format": FILE_FORMAT, "generated_by": "rapid-profile", "uncounted": [],
            "profile": read_cache()[name]}


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_a_profile_file_loads_as_the_profile_it_holds(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.json", payload())
    assert load_profile_file(path) == load_profile("smolvla")
    assert PROFILES.create(f"file:{path}") == load_profile("smolvla")
    assert check_profile(f"file:{path}") == f"file:{path}"
    assert "file:<json>" in PROFILES.names()


def test_the_cost_model_and_the_env_config_take_a_file_profile(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.json", payload("openvla-7b"))
    mine = build_cost_model(f"file:{path}", "jetson-agx-orin", "a100")
    shipped = build_cost_model("openvla-7b", "jetson-agx-orin", "a100")
    assert mine.n_blocks == shipped.n_blocks
    assert mine.compute_seconds(mine.n_blocks) == shipped.compute_seconds(shipped.n_blocks)
    validate_core_names(EnvConfig(profile=f"file:{path}"))
    with pytest.raises(ProfileFileError, match="No such file"):
        validate_core_names(EnvConfig(profile=f"file:{tmp_path / 'gone.json'}"))


def test_the_digest_is_the_content_and_two_copies_are_one_profile(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", payload())
    b = write(tmp_path / "b.json", payload())
    assert profile_digest(f"file:{a}") == profile_file_digest(b)
    assert profile_digest(f"file:{a}").startswith("sha256:")
    assert profile_digest("smolvla") is None
    assert first_alias([f"file:{a}", f"file:{b}"], PROFILES.identity) == (f"file:{a}",
                                                                         f"file:{b}")
    write(b, payload("pi0"))
    assert first_alias([f"file:{a}", f"file:{b}"], PROFILES.identity) is None


def _broken(edit: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(payload()))
    edit(data)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_broken(lambda d: d.pop("format")), "format: expected 'rapid-env-profile/1', got null"),
        (_broken(lambda d: d.pop("profile")), "profile: expected an object, got null"),
        (_broken(lambda d: d["profile"]["blocks"][3].update(flops="12")),
         'profile.blocks[3].flops: expected number, got "12"'),
        (_broken(lambda d: d["profile"]["blocks"][0].update(flops=-1.0)),
         "profile.blocks[0]: block 'vision.siglip': flops must be finite and >= 0, got -1.0"),
        (_broken(lambda d: d["profile"]["blocks"][1].pop("weight_bytes")),
         "profile.blocks[1].weight_bytes: missing"),
        (_broken(lambda d: d["profile"]["blocks"][1].update(colour=1)),
         "profile.blocks[1].colour: unknown field; allowed: name, flops"),
        (_broken(lambda d: d["profile"].update(decode_steps=2.5)),
         "profile.decode_steps: expected int, got 2.5"),
        (_broken(lambda d: d["profile"].update(loop="spiral")),
         "profile: profile 'smolvla': unknown loop 'spiral'; allowed: autoregressive"),
        (_broken(lambda d: d["profile"].update(blocks=[])),
         "profile.blocks: expected a non-empty list of blocks"),
        ([1, 2], "expected a JSON object with 'format' and 'profile'"),
    ],
)
def test_a_malformed_profile_file_names_the_bad_field(
    tmp_path: Path, data: object, message: str
) -> None:
    path = write(tmp_path / "bad.json", data)
    with pytest.raises(ProfileFileError) as err:
        PROFILES.create(f"file:{path}")
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(f"profile file {str(path)!r}: ") and message in str(err.value)


def test_a_file_that_is_not_json_or_missing_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{oops")
    with pytest.raises(ProfileFileError, match=r"not JSON \(Expecting property name"):
        check_profile(f"file:{path}")
    with pytest.raises(ProfileFileError, match="No such file"):
        check_profile(f"file:{tmp_path / 'nothing.json'}")
    with pytest.raises(UnknownNameError, match="allowed: .*file:<json>"):
        check_profile("files:x.json")
