"""What ``rapid-serve`` is started with: its settings, its start-up errors, its token file.

Nothing here imports torch or grpc, so the command line (``rapid_env.cli.serve``) can parse and
check its flags, and answer ``--help``, before the heavy modules load.
"""

from __future__ import annotations

import logging
import math
import re
import ssl
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path

log = logging.getLogger("rapid_env.serve")

SERVABLE = ("chunk-regress", "ar-token", "flow", "ckpt:<dir>")
"""Policies with a split runtime (an executable VLA), the ones ``rapid-serve`` can serve."""

LOOPBACK = ("127.0.0.1", "::1", "[::1]", "localhost")
"""Hosts that keep plaintext traffic on this machine (no warning about missing TLS)."""

DEVICE_KEY = "rapid-serve-device"
DTYPE_KEY = "rapid-serve-dtype"
"""Keys of ``Info``'s reply metadata: where the cloud half runs and in which precision.

``ServerInfo`` has no field for them, and the wire format does not depend on them: boundaries
arrive and actions leave as float32 whatever they say."""


class UsageError(Exception):
    """A start-up problem the user must fix (``rapid-serve`` exits 2 with the message)."""


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""``--log-level`` values (any case)."""

MAX_REQUEST_MB = 2047.0
"""gRPC keeps message sizes in a signed 32-bit int: the largest request is just under 2 GiB."""

BOUNDS: dict[str, tuple[str, type, float, float, bool]] = {
    # field: (flag, type, low, high, None allowed)
    "port": ("--port", int, 0, 65535, False),
    "max_request_mb": ("--max-request-mb", float, 1e-3, MAX_REQUEST_MB, False),
    "deadline_s": ("--deadline-s", float, 1e-3, 3600.0, False),
    "workers": ("--workers", int, 1, 256, False),
    "max_concurrent": ("--max-concurrent", int, 1, 65536, True),
    "max_requests": ("--max-requests", int, 1, 10**9, True),
    "max_seconds": ("--max-seconds", float, 1e-3, 366 * 86400.0, True),  # a year
    "grace_s": ("--grace-s", float, 0.0, 600.0, False),
    "chunk_size": ("--chunk-size", int, 1, 256, False),
    "max_batch": ("--max-batch", int, 1, 1024, False),
    "max_wait_ms": ("--max-wait-ms", float, 0.0, 60000.0, False),
}
"""Every number ``rapid-serve`` takes: its flag, kind and closed range (finite, always).

The ranges catch typos and unit slips; none is near what a real deployment uses. ``chunk_size``
matches the environment's own bound (:data:`rapid_env.config.MAX_CHUNK_SIZE`)."""

TORCH_THREADS = ("--torch-threads", int, 1, 1024, True)
"""``--torch-threads``: not a :class:`ServeConfig` field (it is set on torch), checked alike."""


def check_number(flag: str, kind: type, low: float, high: float, optional: bool,
                 value: object) -> None:
    """:class:`UsageError` naming ``flag`` and its range unless ``value`` is in it (and finite)."""
    if value is None and optional:
        return
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        what = f"an int in {_num(low)}..{_num(high)}"
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)  # type: ignore[arg-type]
        what = f"a finite number in {_num(low)}..{_num(high)}"
    if not ok or not low <= value <= high:  # type: ignore[operator]
        raise UsageError(f"{flag} {value}; allowed: {what}" + (" (or leave it out)" if optional
                                                               else ""))


def _num(x: float) -> str:
    """A bound as people write it: 31622400, not 3.16224e+07; 0.001 as it is."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def check_log_level(name: str) -> int:
    """The :mod:`logging` level ``name`` stands for; :class:`UsageError` for another name."""
    if str(name).upper() not in LOG_LEVELS:
        raise UsageError(f"--log-level {name}; allowed: {', '.join(LOG_LEVELS)}")
    return int(getattr(logging, str(name).upper()))


def check_placement(device: str, dtype: str) -> None:
    """:class:`UsageError` unless ``device`` and ``dtype`` have the forms ``rapid-eval`` takes.

    The forms are :class:`~rapid_env.config.EnvConfig`'s own (its ``device`` and ``dtype``
    fields), so both commands accept the same names; whether the device is on this machine is
    asked of torch later (:func:`rapid_env.agents.torch_device.check_device`).
    """
    from rapid_env.config import DEVICE_FORMS, DTYPE_CHOICES, EnvConfig  # loads the task suite

    try:
        EnvConfig(device=device)
    except ValueError:
        raise UsageError(f"--device {device}; allowed: {', '.join(DEVICE_FORMS)}") from None
    if dtype not in DTYPE_CHOICES:
        raise UsageError(f"--dtype {dtype}; allowed: {', '.join(DTYPE_CHOICES)}")


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
    max_batch: int = 1
    max_wait_ms: float = 0.0
    device: str = "cpu"  # where the cloud half runs (--device)
    dtype: str = "float32"  # its weights' and activations' precision (--dtype)

    def __post_init__(self) -> None:
        """Check every number against :data:`BOUNDS` and the device and dtype names.

        One :class:`UsageError` naming the flag; the device's presence is checked as it loads.
        """
        for f in fields(self):
            if f.name in BOUNDS:
                check_number(*BOUNDS[f.name], getattr(self, f.name))
        check_placement(self.device, self.dtype)

    @property
    def batching(self) -> bool:
        """Whether requests go through the batcher (``--max-batch`` above 1 or a wait above 0).

        The defaults (1 and 0) keep the unbatched path: each call runs its own forward on its
        own request thread, exactly as before batching existed.
        """
        return self.max_batch > 1 or self.max_wait_ms > 0

    @property
    def max_request_bytes(self) -> int:
        """``--max-request-mb`` in bytes."""
        return int(self.max_request_mb * (1 << 20))


def load_token(path: str | Path) -> str:
    """The token in ``path``, stripped, under the one rule the server and its clients share.

    Refused, each in one line naming the file: a missing, unreadable or empty file, anything but
    a regular file (a FIFO would block; nothing is opened before ``os.stat``), one that its group
    or other users may read or write (``chmod 600`` it: a server and a client that disagreed
    would let a client use a token the server calls exposed), and a token that is not printable
    ASCII without spaces (it travels as gRPC metadata). The token itself is never echoed.

    Raises:
        ValueError: as above.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise ValueError(f"cannot read token file {p}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ValueError(f"token file {p} is {what}; give the file that holds the token")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(
            f"token file {p} is readable or writable by its group or other users; chmod 600 {p}"
        )
    try:
        text = p.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ValueError(f"cannot read token file {p}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ValueError(f"token in {p} must be printable ASCII without spaces") from None
    if not text:
        raise ValueError(f"token file {p} is empty")
    if not all(33 <= ord(c) <= 126 for c in text):
        raise ValueError(f"token in {p} must be printable ASCII without spaces")
    return text


def read_token_file(path: str | Path) -> str:
    """The token in ``path`` (:func:`load_token`'s rule); :class:`UsageError` when unusable."""
    try:
        text = load_token(path)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if len(text) < 16:
        log.warning("token in %s is only %d characters; use 32 random ones", path, len(text))
    return text


def read_bytes(path: str, what: str) -> bytes:
    """The bytes of a file a flag names (a TLS certificate or key); :class:`UsageError` if not.

    Only a regular file is opened (a FIFO would block, a device never ends).
    """
    try:
        if not stat.S_ISREG(Path(path).stat().st_mode):
            raise UsageError(f"cannot read {what} {path}: not a regular file")
        return Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None


_CERT_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----")
_KEY_PEM = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def read_tls_pair(cert_path: str, key_path: str) -> tuple[bytes, bytes]:
    """``--tls-cert`` and ``--tls-key``, checked to load before anything binds.

    gRPC reports a certificate or key it cannot use as ``Failed to bind to address``, which sends
    the user after the port; here each file is named instead. Checked: a PEM certificate in the
    one, a PEM private key (not encrypted: rapid-serve has no passphrase) in the other, and that
    they load together (:meth:`ssl.SSLContext.load_cert_chain`). Contents are never echoed.

    Raises:
        UsageError: one line naming the file (or both, when they do not belong together).
    """
    cert = read_bytes(cert_path, "--tls-cert")
    key = read_bytes(key_path, "--tls-key")
    if not _CERT_PEM.search(cert):
        raise UsageError(f"--tls-cert {cert_path}: the certificate could not be loaded (no PEM "
                         "'BEGIN CERTIFICATE' block)")
    if not _KEY_PEM.search(key):
        raise UsageError(f"--tls-key {key_path}: the private key could not be loaded (no PEM "
                         "'BEGIN ... PRIVATE KEY' block)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:  # a password callback: an encrypted key fails here instead of prompting
        context.load_cert_chain(cert_path, key_path, password=lambda: b"")
    except (ssl.SSLError, OSError) as e:
        reason = getattr(e, "reason", None) or type(e).__name__
        raise UsageError(f"--tls-cert {cert_path} / --tls-key {key_path}: the certificate and key "
                         f"could not be loaded together ({reason}; an encrypted key, or a key "
                         "of another certificate?)") from None
    return cert, key
