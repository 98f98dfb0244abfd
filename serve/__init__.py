"""``rapid-serve``: the cloud half of a split VLA policy over gRPC (``docs/serve.md``).

* :mod:`.boundary` checks an edge's safetensors bytes against the expected tensors before any of
  them is decoded;
* :mod:`.config` holds what the server is started with (no torch, no grpc: the command line
  parses its flags with it before anything heavy loads);
* :mod:`.model` is the cloud half of a loaded policy (:class:`~.model.CloudModel`), :mod:`.auth`
  the bearer-token check, :mod:`.servicer` the ``PolicyServer`` calls, :mod:`.batcher` the
  queue that runs same-split requests as one forward (``--max-batch``) and :mod:`.lifecycle` a
  started server with its graceful stop; the ``rapid-serve`` command is
  :mod:`rapid_env.cli.serve`;
* :mod:`.client` is what a control loop calls (:class:`~.client.PolicyClient`), with errors as a
  small exception hierarchy it can record as faults;
* :mod:`.transport` puts a server in the loop (``--links remote:<host:port>``);
* ``rapid_serve_pb2*.py`` are generated from ``rapid_serve.proto`` by ``make proto``.
"""
