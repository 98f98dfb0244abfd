"""Plug a user's own checkpoint in as a :class:`~rapid_env.agents.policy.Policy`.

The small executable VLAs stand in for models this machine cannot run; a user with a GPU and real
weights replaces them through this adapter. It only ever reads a *local* directory (every
``from_pretrained`` gets ``local_files_only=True``) and only ever loads weights from safetensors
files, never from pickles, so pointing it at an untrusted checkpoint cannot run code hidden in the
weights.

Two layouts are detected from ``<path>/config.json``, each loaded by its own backend:

* **transformers** -- ``config.json`` has ``model_type`` or ``architectures`` (what
  ``save_pretrained`` writes) and the weights are ``model.safetensors`` (or a sharded
  ``model.safetensors.index.json``). A small *predict* glue
  ``predict(model, processor, image, proprio, instruction) -> (K, D) or (D,)`` turns the model
  into actions; it is passed as ``predict=`` or named by dotted path under ``"predict"`` in
  ``<path>/rapid_env_adapter.json``. The default, :func:`predict_action_default`, serves models
  with an OpenVLA-style ``predict_action``.
* **LeRobot** -- ``config.json`` has a ``type`` field (``"act"``, ``"smolvla"`` ...) and the
  weights are ``model.safetensors``. The module is built by a factory registered for that type
  with :func:`register_lerobot_factory` and must offer ``predict_action_chunk(batch)`` (preferred)
  or ``select_action(batch)``.

The model's native action (e.g. OpenVLA's 7-D end-effector delta + gripper) becomes Meta-World's
4-D action through an :class:`ActionMap`, the same for both layouts; chunks shorter than
``chunk_size`` repeat their last action, longer ones are truncated (see :func:`fit_chunk`).

``rapid_env_adapter.json`` (optional) may hold::

    {"predict": "my_glue:predict", "predict_kwargs": {"unnorm_key": "bridge_orig"},
     "action_map": {"indices": [0, 1, 2, 6], "xyz_scale": 25.0,
                    "gripper_open": 1.0, "gripper_closed": 0.0}}

Constructor arguments win over the file. Its ``predict`` names code to import, so it is honoured
only when the *user* passes ``trust_checkpoint_code=True`` (rapid-eval's
``--trust-checkpoint-code``; it implies ``trust_remote_code``); without it such a file is a
ValueError raised before any import. See docs/plugging_in_a_policy.md.

Modules:

* :mod:`.adapter` -- :class:`HFPolicyAdapter` (reads the folder, :func:`detect_layout`, picks the
  backend, applies the action map) and :func:`hf_policy_factory`;
* :mod:`.backend` -- the :class:`PolicyBackend` protocol every backend implements, its
  :class:`LoadOptions`, and the shared rules: safetensors only, checkpoint-named code only with
  the user's trust (:data:`CODE_KEYS`, :func:`require_code_trust`);
* :mod:`.transformers_backend` -- :class:`TransformersBackend`, the predict glue
  (:func:`predict_action_default`, :func:`load_callable`);
* :mod:`.lerobot_backend` -- :class:`LeRobotBackend` and the factory registry
  (:data:`LEROBOT_FACTORIES`, :func:`register_lerobot_factory`);
* :mod:`.actions` -- the shared action map: :func:`check_native_actions`, :class:`ActionMap`,
  :func:`fit_chunk`, chained by :func:`native_to_chunk`.
"""

from __future__ import annotations

from rapid_env.agents.hf_adapter.actions import (
    ActionMap,
    check_native_actions,
    fit_chunk,
    native_to_chunk,
)
from rapid_env.agents.hf_adapter.adapter import HFPolicyAdapter, detect_layout, hf_policy_factory
from rapid_env.agents.hf_adapter.backend import (
    ADAPTER_FILE,
    CODE_KEYS,
    SAFETENSORS_FILES,
    Layout,
    LoadOptions,
    PolicyBackend,
    PredictFn,
    require_code_trust,
)
from rapid_env.agents.hf_adapter.lerobot_backend import (
    LEROBOT_FACTORIES,
    LeRobotBackend,
    LeRobotFactory,
    register_lerobot_factory,
)
from rapid_env.agents.hf_adapter.transformers_backend import (
    OPENVLA_PROMPT,
    TransformersBackend,
    load_callable,
    predict_action_default,
)

__all__ = [
    "ADAPTER_FILE",
    "CODE_KEYS",
    "LEROBOT_FACTORIES",
    "OPENVLA_PROMPT",
    "SAFETENSORS_FILES",
    "ActionMap",
    "HFPolicyAdapter",
    "Layout",
    "LeRobotBackend",
    "LeRobotFactory",
    "LoadOptions",
    "PolicyBackend",
    "PredictFn",
    "TransformersBackend",
    "check_native_actions",
    "detect_layout",
    "fit_chunk",
    "hf_policy_factory",
    "load_callable",
    "native_to_chunk",
    "predict_action_default",
    "register_lerobot_factory",
    "require_code_trust",
]
