"""The envs keep the conventions Gymnasium and stable-baselines3 users bring with them.

* ``info["episode"]`` belongs to the episode statistics (``RecordEpisodeStatistics``, SB3's
  ``Monitor``, and SB3's PPO, which reads ``r`` from it); the RAPID record is ``info["rapid"]``.
* An id with its module, ``"rapid_env:rapid_env/Rapid-v0"``, resolves in a worker process that
  never imported rapid_env (Gymnasium 1.x has no plugin entry points to find the namespace).
* An async vector env started after this process rendered does not hang.
* The README's Gymnasium snippet exits without "Exception ignored" noise from the renderer.

Everything that starts processes runs in a fresh interpreter with a timeout, so that a hang fails
the test instead of the suite.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import RecordEpisodeStatistics

import rapid_env
from rapid_env.wrapper import RECORD_INFO_KEY

KW = dict(task="reach", policy="expert", image_size=16, max_episode_s=0.5)
TIMEOUT_S = 180
README = Path(__file__).resolve().parents[2] / "README.md"


def run_script(script: str) -> str:
    """Run ``script`` in a fresh interpreter (its own session); its output, or fail on a hang."""
    env = {**os.environ, "MUJOCO_GL": "egl", "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the hung workers go with it
        out, err = proc.communicate()
        pytest.fail(f"hung for {TIMEOUT_S} s:\n{out}\n{err}")
    assert proc.returncode == 0, f"{out}\n{err}"
    return out + err


def test_record_episode_statistics_owns_info_episode() -> None:
    env = RecordEpisodeStatistics(gym.make(rapid_env.RAPID_ENV_ID, **KW))
    env.reset(seed=7)
    total, steps, done, info = 0.0, 0, False, {}
    while not done:
        _, reward, term, trunc, info = env.step(np.array([1, 0]))  # infer all-cloud every tick
        total += float(reward)
        steps += 1
        done = term or trunc
    env.close()
    stats = info["episode"]
    assert set(stats) == {"r", "l", "t"}
    assert int(stats["l"]) == steps and float(stats["r"]) == pytest.approx(total, rel=1e-5)
    record = info[RECORD_INFO_KEY]
    assert RECORD_INFO_KEY == "rapid" and isinstance(record, dict)
    assert record["inferences"] >= 1 and "success" in record


def test_ppo_on_subprocess_workers_without_monitor() -> None:
    """SB3's PPO reads ``info["episode"]["r"]`` whenever the key is there: it must be SB3's."""
    out = run_script(textwrap.dedent(
        f"""
        import gymnasium as gym
        from stable_baselines3 import PPO
        from stable_baselines3.common.vec_env import SubprocVecEnv

        KW = {KW!r}
        if __name__ == "__main__":
            make = lambda: gym.make("rapid_env:rapid_env/Rapid-v0", **KW)
            venv = SubprocVecEnv([make] * 2, start_method="forkserver")
            model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0,
                        device="cpu", verbose=0)
            model.learn(total_timesteps=256)
            assert model.num_timesteps == 256, model.num_timesteps
            assert len(model.ep_info_buffer) == 0, "no Monitor, so no episode statistics"
            venv.close()
            print("ppo ok", flush=True)
        """
    ))
    assert "ppo ok" in out


def test_make_vec_env_on_subprocess_workers_resolves_the_module_id() -> None:
    """SB3's ``make_vec_env`` with the id's module: the workers import rapid_env themselves."""
    out = run_script(textwrap.dedent(
        f"""
        import numpy as np
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import SubprocVecEnv

        if __name__ == "__main__":
            assert "rapid_env" not in __import__("sys").modules  # nor will the workers be told
            venv = make_vec_env("rapid_env:rapid_env/Rapid-v0", n_envs=2, seed=0,
                                vec_env_cls=SubprocVecEnv, env_kwargs={KW!r})
            venv.reset()
            venv.step(np.array([[1, 0], [1, 0]]))
            venv.close()
            print("make_vec_env ok", flush=True)
        """
    ))
    assert "make_vec_env ok" in out


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="fork is POSIX-only")
def test_async_vector_env_after_rendering_here_does_not_hang() -> None:
    """Create, reset and step one task env (EGL alive), then an async vector env of the same id.

    Gymnasium's default start method used to be ``fork``, whose workers waited forever for the GL
    driver's threads; the default is now ``forkserver`` once this process renders, and a worker
    forked anyway (``context="fork"``) says why it cannot render instead of hanging.
    """
    out = run_script(textwrap.dedent(
        """
        import multiprocessing
        import gymnasium as gym
        import rapid_env

        env = gym.make("rapid_env/reach-v3", image_size=16)
        env.reset(seed=0)
        env.step(env.action_space.sample())

        vec = gym.make_vec("rapid_env/reach-v3", 2, vectorization_mode="async", image_size=16)
        obs, _ = vec.reset(seed=0)
        assert obs["image"].shape == (2, 16, 16, 3) and obs["image"].any()
        vec.step(vec.action_space.sample())
        vec.close()
        print("async ok", multiprocessing.get_start_method(), flush=True)

        forked = gym.make_vec("rapid_env/reach-v3", 2, vectorization_mode="async",
                              vector_kwargs={"context": "fork"}, image_size=16)
        try:
            forked.reset(seed=0)
        except RuntimeError as err:
            print("fork refused:", err, flush=True)
        forked.close(terminate=True)
        env.close()
        """
    ))
    assert "async ok forkserver" in out, out
    assert re.search(r"fork refused: this process was forked from one that had already", out), out


def test_a_chosen_start_method_is_kept() -> None:
    out = run_script(textwrap.dedent(
        """
        import multiprocessing
        multiprocessing.set_start_method("spawn")
        import gymnasium as gym
        import rapid_env

        env = gym.make("rapid_env/reach-v3", image_size=16)
        env.reset(seed=0)
        env.close()
        print("method", multiprocessing.get_start_method(), flush=True)
        """
    ))
    assert "method spawn" in out


def readme_gymnasium_snippet() -> str:
    """The first Python block of the README's "Gymnasium ids" section."""
    section = README.read_text().split("## Gymnasium ids", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Gymnasium section has no python block"
    return match.group(1)


def test_readme_gymnasium_snippet_exits_quietly() -> None:
    """No "Exception ignored in Renderer.__del__ ... EGLError" after the snippet's last line."""
    out = run_script(readme_gymnasium_snippet() + '\nprint("snippet ok", flush=True)\n')
    assert "snippet ok" in out
    assert "Exception ignored" not in out and "EGLError" not in out, out
