"""One of this project's policies behind openpi's protocol: what ``rapid-policy-server`` serves.

:class:`OpenPIAdapter` is the object ``rapid_policy_server`` calls: it turns an openpi observation
map into the :class:`~rapid_env.policy.PolicyInput` the policy would get in the loop, the inverse
of :meth:`rapid_env.agents.openpi_policy.OpenPIPolicy.observation` (``observation/image`` the main
frame, ``observation/wrist_image`` the policy's second camera, ``observation/state`` the proprio
vector, ``prompt`` the instruction), and answers ``{"actions": chunk}``. So a policy served here
and queried with ``--policy openpi:ws://...`` drives the robot exactly as it does in-process.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rapid_env.policy import Policy, PolicyInput

IMAGE, WRIST, STATE, PROMPT = (
    "observation/image", "observation/wrist_image", "observation/state", "prompt")


class OpenPIAdapter:
    """Serves ``policy`` as ``infer(obs) -> {"actions": ...}`` (module docstring).

    Args:
        policy: a built policy that reads no simulator handle (a learned one).
        seed: its episode stream is drawn once from this seed: openpi has no reset.
    """

    def __init__(self, policy: Policy, seed: int = 0) -> None:
        self.policy = policy
        self.cameras: tuple[str, ...] = tuple(getattr(policy, "cameras", ()) or ())
        policy.reset(np.random.default_rng(seed))

    def metadata(self) -> dict[str, Any]:
        """What a client is told on connect: the policy, its chunk size and cameras."""
        return {"server": "rapid-policy-server", "policy": self.policy.name,
                "chunk_size": int(self.policy.chunk_size), "cameras": list(self.cameras)}

    def policy_input(self, obs: dict[str, Any]) -> PolicyInput:
        """The policy's input for an openpi observation; ValueError naming a missing key."""
        missing = [k for k in (IMAGE, STATE) if k not in obs]
        if self.cameras and WRIST not in obs:
            missing.append(WRIST)
        if missing:
            raise ValueError(f"observation without {', '.join(missing)}; it has "
                             f"{', '.join(sorted(map(str, obs))) or 'nothing'}")
        images = {self.cameras[0]: np.array(obs[WRIST], dtype=np.uint8)} if self.cameras else {}
        return PolicyInput(np.array(obs[IMAGE], dtype=np.uint8), np.array(obs[STATE]),
                           str(obs.get(PROMPT, "")), images=images)

    def infer(self, obs: dict[str, Any]) -> dict[str, Any]:
        """One chunk for ``obs`` (the policy's own errors reach the client as its traceback)."""
        chunk = self.policy.act(self.policy_input(obs))
        return {"actions": np.asarray(chunk, dtype=np.float32)}
