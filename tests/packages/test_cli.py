"""``rapid-policy-server --object MODULE:NAME``: any Python object, served over openpi."""

from __future__ import annotations

import numpy as np
import pytest
from rapid_policy_server import PolicyClient
from rapid_policy_server.cli import build_server, main, parser

OBS = {"observation/state": np.zeros(4, np.float32), "prompt": "hold"}


@pytest.mark.parametrize("spec", ["tests.packages.hold_policy:Hold",
                                  "tests.packages.hold_policy:make_hold"])
def test_an_object_or_its_factory_is_served(spec: str) -> None:
    server, what = build_server(parser().parse_args(["--object", spec, "--port", "0"]))
    assert what == spec
    with server.start(), PolicyClient(server.url) as client:
        assert client.metadata == {"policy": spec}
        np.testing.assert_array_equal(client.infer(OBS)["actions"], np.zeros((8, 4)))


@pytest.mark.parametrize(("spec", "says"), [
    ("tests.packages.hold_policy", "expected MODULE:NAME"),
    ("tests.packages.nowhere:Hold", "cannot import"),
    ("tests.packages.hold_policy:Nope", "has no Nope"),
])
def test_a_bad_object_is_one_line_and_exit_2(spec: str, says: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--object", spec, "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err


def test_policy_and_lerobot_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parser().parse_args(["--policy", "chunk-regress", "--lerobot", "x"])
    assert e.value.code == 2 and "not allowed with" in capsys.readouterr().err
