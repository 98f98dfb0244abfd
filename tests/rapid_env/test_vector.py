"""The RAPID env runs in gymnasium's async vector env with default arguments (``fork`` workers).

It used to hang forever: the parent builds one env to read the spaces, whose policy runs torch
and so starts OpenMP's (libgomp's) thread pool; a forked worker then deadlocks in its first
parallel torch op. The fix is a fork hook in the modules that run torch (one torch thread in a
forked child, :func:`rapid_env.agents.vla.policy.one_torch_thread_in_forked_child`).

The check runs in a fresh interpreter, with a timeout: this pytest process has used torch
already, and a hang must fail the test, not the suite. That interpreter first runs a parallel
torch op on two threads itself, so the pool is started whatever the machine's core count, as in
any training script that built a vector env after touching torch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

TIMEOUT_S = 120

SCRIPT = textwrap.dedent(
    """
    import gymnasium as gym
    import numpy as np
    import torch

    import rapid_env

    torch.set_num_threads(2)
    assert float(torch.rand(2_000_000).sum()) > 0  # the parent's OpenMP pool is running

    def drive(env, label):
        assert isinstance(env, gym.vector.AsyncVectorEnv), type(env)
        env.reset(seed=0)
        # every tick asks both workers' models, split 0 (all cloud: the first chunk lands at
        # tick 4 over the default link; an edge split of a 7B profile would take longer)
        infer = np.array([[1, 0], [1, 0]])
        got_chunk = np.zeros(2, dtype=bool)
        for _ in range(8):
            _, _, _, _, info = env.step(infer)
            got_chunk |= np.asarray(info["chunk_remaining"]) > 0
        env.close()
        assert got_chunk.all(), f"{label}: a worker never got a chunk from its model"
        print(label, "ok", flush=True)

    kw = dict(task="reach", max_episode_s=0.5, image_size=16)  # default policy: chunk-regress
    drive(gym.make_vec(rapid_env.RAPID_ENV_ID, num_envs=2, vectorization_mode="async", **kw),
          "make_vec")
    # users who build the vector env themselves get the same: the default context is fork
    drive(gym.vector.AsyncVectorEnv([lambda: gym.make(rapid_env.RAPID_ENV_ID, **kw)] * 2),
          "AsyncVectorEnv")
    """
)


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="fork is POSIX-only")
def test_async_vector_env_with_default_arguments_does_not_hang() -> None:
    env = {**os.environ, "MUJOCO_GL": "egl", "WANDB_MODE": "disabled"}
    env.pop("OMP_NUM_THREADS", None)  # the hang needs more than one OpenMP thread in the parent
    # its own session, so that on a timeout the hung workers are killed with it
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"async vector env hung for {TIMEOUT_S} s (fork after OpenMP?):\n{out}")
    assert proc.returncode == 0, out
    assert "make_vec ok" in out and "AsyncVectorEnv ok" in out, out
