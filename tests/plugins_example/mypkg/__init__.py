"""An example plugin package for rapid-env: a policy and a decider registered from outside.

``docs/plugging_in_a_policy.md`` walks through it; ``tests/test_plugins.py`` runs it through
``rapid-eval --import mypkg.mypolicy`` and through an entry point.
"""
