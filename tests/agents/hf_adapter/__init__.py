"""Tests of rapid_env.agents.hf_adapter, one module per module of the package."""
