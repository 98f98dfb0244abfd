"""The learned decider's trainer (``rapid-train-decider``): PPO, W&B, export, evaluation, card.

The agent acts in :class:`rapid_env.wrapper.CompactActions` over :class:`rapid_env.wrapper.RapidEnv`
(one environment per training task, stepped in one process: the VLA forward runs only on infer
ticks, so an environment tick is cheap and subprocesses would only add copies of the model).
Observations are normalised by SB3's ``VecNormalize`` (the features span orders of magnitude:
rad/s^2, z-scores, log10 bandwidth); its statistics ship with the actor's weights.

Training episodes draw their seeds from 0-999 (a generator seeded by ``--seed``); evaluation runs
the saved folder through the same :func:`rapid_env.episode.run_episode` as ``rapid-eval``, on
seeds from ``--eval-seed`` (1000 by default), next to baseline deciders on the same seeds.

One module per job: :mod:`.settings` (seeds, tasks, PPO hyper-parameters; no heavy imports),
:mod:`.envs` (the training environments), :mod:`.train` (PPO with its progress),
:mod:`.wandb_log` (the W&B run), :mod:`.export` (the decider folder), :mod:`.evaluate` (held-out
episodes next to the baselines) and :mod:`.card` (``card.json`` and ``README.md``). The command
line is :mod:`rapid_env.cli.train_decider`.
"""
