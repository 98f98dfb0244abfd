"""Small executable VLA families, their training data, checkpoints and split runtime.

Each family is built from ``transformers`` components with small configs (``from_config``, no
downloads) and stands for a full-size architecture whose latency comes from the cost profiles
(:mod:`rapid_env.cost`). See docs/design.md, "Two layers of model".
"""
