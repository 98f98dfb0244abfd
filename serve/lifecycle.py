"""A started ``rapid-serve``: the gRPC server, its health service, and its graceful stop.

:func:`start` loads the policy (:func:`~rapid_env.serve.model.load_cloud_model`) unless given its
cloud half, binds (127.0.0.1 unless the config says otherwise; TLS when given a certificate and
key), and serves ``PolicyServer`` behind :class:`~rapid_env.serve.auth.TokenAuth` next to the
standard health service. A signal, a test or a bound (``max_requests``, ``max_seconds``) asks for
the stop; a watcher thread turns health ``NOT_SERVING`` and lets calls in flight finish.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from rapid_env.serve import rapid_serve_pb2_grpc as pb_grpc
from rapid_env.serve.auth import TokenAuth
from rapid_env.serve.batcher import Batcher
from rapid_env.serve.config import ServeConfig, UsageError
from rapid_env.serve.model import CloudModel, load_cloud_model
from rapid_env.serve.servicer import SERVICE_NAME, PolicyService

log = logging.getLogger("rapid_env.serve")


def host_port(host: str, port: int) -> str:
    """``host:port`` as gRPC takes it (an IPv6 host in brackets)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _grpc_server(config: ServeConfig) -> grpc.Server:
    """The server, not yet bound: its threads, the token check, the size and call limits."""
    options = [
        ("grpc.max_receive_message_length", config.max_request_bytes),
        ("grpc.max_send_message_length", 1 << 20),
        ("grpc.so_reuseport", 0),  # a second server on our port must fail, not share it
    ]
    return grpc.server(
        futures.ThreadPoolExecutor(config.workers, thread_name_prefix="rapid-serve"),
        interceptors=[TokenAuth(config.token)],
        options=options,
        maximum_concurrent_rpcs=config.max_concurrent or 2 * config.workers,
    )


def _bind(server: grpc.Server, config: ServeConfig) -> int:
    """Bind the configured address (TLS when given a certificate and key); the bound port."""
    address = host_port(config.host, config.port)
    try:
        if config.tls_cert is not None and config.tls_key is not None:
            creds = grpc.ssl_server_credentials([(config.tls_key, config.tls_cert)])
            port = server.add_secure_port(address, creds)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as e:
        raise UsageError(f"cannot listen on {address}: {e}") from None
    if port == 0:
        raise UsageError(f"cannot listen on {address}")
    return port


class RunningServer:
    """A started server: its port, and a graceful stop that a signal, a test or a bound triggers.

    The stop runs on a watcher thread: health turns NOT_SERVING first, then ``server.stop(grace)``
    lets calls in flight finish.
    """

    def __init__(
        self,
        config: ServeConfig,
        cloud: CloudModel,
        on_stopped: Callable[[], None] | None = None,
        batch: bool | None = None,
    ) -> None:
        self.config = config
        self.cloud = cloud
        self.stop_requested = threading.Event()
        self.stopped = threading.Event()
        self._calls = 0
        self._count_lock = threading.Lock()
        self._on_stopped = on_stopped
        self.health = health.HealthServicer()
        self.batcher = _batcher(config, cloud, batch)
        self.service = PolicyService(
            cloud, config.max_request_bytes, config.deadline_s, on_call=self._counted,
            batcher=self.batcher,
        )
        self.server = _grpc_server(config)
        pb_grpc.add_PolicyServerServicer_to_server(self.service, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = _bind(self.server, config)
        self.address = host_port(config.host, self.port)
        self.server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._watcher = threading.Thread(target=self._watch, name="rapid-serve-stop", daemon=True)
        self._watcher.start()

    def _counted(self) -> None:
        with self._count_lock:
            self._calls += 1
            done = self.config.max_requests is not None and self._calls >= self.config.max_requests
        if done:
            log.info("served %d calls (--max-requests): stopping", self._calls)
            self.stop_requested.set()

    def _watch(self) -> None:
        if not self.stop_requested.wait(self.config.max_seconds):
            log.info("--max-seconds %s passed: stopping", self.config.max_seconds)
        self.health.enter_graceful_shutdown()  # every service NOT_SERVING, later sets ignored
        self.server.stop(self.config.grace_s).wait()
        if self.batcher is not None:
            self.batcher.close()
        self.stopped.set()
        if self._on_stopped is not None:
            self._on_stopped()

    def stop(self, wait: bool = True) -> None:
        """Ask for the graceful stop (and wait for it)."""
        self.stop_requested.set()
        if wait:
            self.stopped.wait()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the server has stopped; False on timeout."""
        return self.stopped.wait(timeout)


def _batcher(config: ServeConfig, cloud: CloudModel, batch: bool | None) -> Batcher | None:
    """The batching queue when ``batch`` (default: when the config batches), else None."""
    if not (config.batching if batch is None else batch):
        return None
    if config.max_batch > config.workers:
        log.warning(
            "--max-batch %d is above --workers %d: a batch holds at most as many requests as "
            "there are request threads to wait in it", config.max_batch, config.workers,
        )
    return Batcher(cloud.forward_batch, config.max_batch, config.max_wait_ms / 1000.0)


def start(
    config: ServeConfig, cloud: CloudModel | None = None, batch: bool | None = None
) -> RunningServer:
    """Load the policy (unless ``cloud`` is given) and start serving it.

    ``batch`` forces the batching queue on or off; by default it is on when ``--max-batch`` is
    above 1 or ``--max-wait-ms`` above 0 (a benchmark turns it on at batch 1 for its statistics).
    """
    if cloud is None:
        cloud = load_cloud_model(
            config.policy, config.chunk_size, config.parallel_forward, config.device, config.dtype
        )
    return RunningServer(config, cloud, batch=batch)

