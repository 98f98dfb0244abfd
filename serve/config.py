"""What ``rapid-serve`` is started with: its settings, its start-up errors, its token file.

Nothing here imports torch or grpc, so the command line (``rapid_env.cli.serve``) can parse and
check its flags, and answer ``--help``, before the heavy modules load.
"""

from __future__ import annotations

import logging
import stat
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("rapid_env.serve")

SERVABLE = ("chunk-regress", "ar-token", "flow", "ckpt:<dir>")
"""Policies with a split runtime (an executable VLA), the ones ``rapid-serve`` can serve."""

LOOPBACK = ("127.0.0.1", "::1", "[::1]", "localhost")
"""Hosts that keep plaintext traffic on this machine (no warning about missing TLS)."""


class UsageError(Exception):
    """A start-up problem the user must fix (``rapid-serve`` exits 2 with the message)."""


def default_chunk_size() -> int:
    """The environment's default chunk size: rows of every reply unless told otherwise."""
    from rapid_env.config import EnvConfig  # its import loads the task suite; only when needed

    return EnvConfig().chunk_size


@dataclass
class ServeConfig:
    """Everything ``rapid-serve`` is started with (the flags, parsed)."""

    policy: str = "chunk-regress"
    token: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    max_request_mb: float = 16.0
    deadline_s: float = 5.0
    workers: int = 4
    max_concurrent: int | None = None  # default: 2 * workers
    parallel_forward: bool = False
    max_requests: int | None = None
    max_seconds: float | None = None
    grace_s: float = 2.0
    chunk_size: int = field(default_factory=default_chunk_size)

    @property
    def max_request_bytes(self) -> int:
        """``--max-request-mb`` in bytes."""
        return int(self.max_request_mb * (1 << 20))


def read_token_file(path: str | Path) -> str:
    """The token in ``path``, stripped; :class:`UsageError` when it is unusable.

    Refused: a missing or empty file, one that others may read or write (``chmod 600`` it), and
    a token that is not printable ASCII without spaces (it travels as gRPC metadata).
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read token file {p}: {e}") from None
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise UsageError(
            f"token file {p} is readable or writable by every user; chmod 600 {p}"
        )
    if not text:
        raise UsageError(f"token file {p} is empty")
    if not all(33 <= ord(c) <= 126 for c in text):
        raise UsageError(f"token in {p} must be printable ASCII without spaces")
    if len(text) < 16:
        log.warning("token in %s is only %d characters; use 32 random ones", p, len(text))
    return text


def read_bytes(path: str, what: str) -> bytes:
    """The bytes of a file a flag names (a TLS certificate or key); :class:`UsageError` if not."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e}") from None
