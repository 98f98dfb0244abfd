"""The console scripts, one module each: the command line (parsing, messages, exit codes) only.

Each module parses its flags before it imports anything heavy (MuJoCo, torch, W&B), so every
``--help`` answers at once; the work itself lives in the layers below (``eval``, ``serve``,
``agents``, ``noise``).
"""
