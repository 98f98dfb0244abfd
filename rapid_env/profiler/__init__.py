"""The offline profiler: counts full-size VLA architectures into ``rapid_env/data/profiles.json``.

Each ``arch_*`` module builds one architecture from ``transformers`` on the ``meta`` device and
counts its blocks' FLOPs and bytes (:mod:`.counting`); :mod:`.write` runs the builders and writes
the cache the runtime reads (:mod:`rapid_env.cost.profiles`). Run it with
``python -m rapid_env.profiler --write [NAME ...]`` (see ``docs/cost_model.md``). It needs torch and
transformers and takes seconds, so nothing the harness runs imports this package.
"""
