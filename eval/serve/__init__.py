"""``rapid-serve``: the cloud half of a split VLA policy over gRPC (``docs/serve.md``).

* :mod:`.boundary` checks an edge's safetensors bytes against the expected tensors before any of
  them is decoded;
* :mod:`.server` is the ``rapid-serve`` server (``PolicyServer`` + the gRPC health service);
* :mod:`.client` is what a control loop calls (:class:`~.client.PolicyClient`), with errors as a
  small exception hierarchy it can record as faults;
* ``rapid_serve_pb2*.py`` are generated from ``rapid_serve.proto`` by ``make proto``.
"""
