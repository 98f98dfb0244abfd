"""The echo gRPC server: ``InferRequest`` in, a real-sized ``InferReply`` out, at once.

``rapid-serve`` validates boundary tensors against its own small model, so payloads of another
size go here: the same grpcio, channel and server options, messages and metadata, only the
handler differs (and its time is subtracted from the round trip, as the server's is).
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent import futures
from typing import Any

from .protocol import ECHO_SERVICE


def echo_main(max_requests: int, max_seconds: float, reply_values: int) -> None:
    """A gRPC server with one method: ``InferRequest`` in, a real-sized ``InferReply`` out."""
    import grpc

    from rapid_env.serve import rapid_serve_pb2 as pb

    stop = threading.Event()
    calls = [0]
    lock = threading.Lock()

    def infer(request: Any, context: Any) -> Any:
        t0 = time.perf_counter()
        reply = pb.InferReply(
            request_id=request.request_id, actions=[0.25] * reply_values, rows=8,
            cols=reply_values // 8, server_ms=(time.perf_counter() - t0) * 1e3,
        )
        with lock:
            calls[0] += 1
            if calls[0] >= max_requests:
                stop.set()
        return reply

    handler = grpc.method_handlers_generic_handler(ECHO_SERVICE, {
        "Infer": grpc.unary_unary_rpc_method_handler(
            infer,
            request_deserializer=pb.InferRequest.FromString,
            response_serializer=pb.InferReply.SerializeToString,
        )
    })
    server = grpc.server(
        futures.ThreadPoolExecutor(4),
        options=[  # rapid-serve's
            ("grpc.max_receive_message_length", 16 << 20),
            ("grpc.max_send_message_length", 1 << 20),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=8,
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"port {port}", flush=True)
    stop.wait(max_seconds)
    server.stop(1).wait()
