"""Pulling partner files over SFTP with paramiko: pinned host keys, fast prefetched reads.

Modelled on Airflow's SFTP hook (one object, short verbs, settings in the connection's
extras) but written against paramiko directly, because the hub needs what the provider does
not give: a host key that is always pinned (there is deliberately no way to skip the check),
downloads that are hashed while they stream, and a guarantee that a landed file is exactly one
consistent version of the remote file or nothing at all.
"""

from __future__ import annotations

import base64
import binascii
import collections
import errno
import hashlib
import io
import logging
import os
import posixpath
import queue
import socket
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import paramiko
from paramiko.buffered_pipe import BufferedPipe, PipeTimeout
from paramiko.common import cMSG_CHANNEL_WINDOW_ADJUST
from paramiko.sftp import CMD_DATA, CMD_READ, CMD_STATUS

from samverkan.core.fsutil import fsync_dir, start_writeback

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
# paramiko's defaults (2 MiB window, 32 KiB packets) cap a transfer at one window per round trip.
# What is in flight is bounded by prefetch_requests x READ_REQUEST_BYTES anyway (8 MiB by
# default); 32 MiB leaves room for 128 requests. (With paramiko's own channel buffer a bigger
# backlog made every read slower; see _ChunkPipe.)
SFTP_WINDOW_SIZE = 1 << 25
SFTP_MAX_PACKET_SIZE = 1 << 18
# Reads in flight, of READ_REQUEST_BYTES each (the most OpenSSH's sftp-server answers in one
# message: 256 KiB less 1 KiB). Measured against OpenSSH 9.2 on localhost (paramiko 5.1, 2
# cores, loaded): 32 x 255 KiB about 4x paramiko's prefetch of 128 x 32 KiB; deeper was no faster.
READ_REQUEST_BYTES = 261_120
DEFAULT_PREFETCH_REQUESTS = 32
# Written bytes handed to the kernel's writeback at a time (see _HashingWriter); 16 and 32 MiB
# measured alike.
WRITEBACK_BYTES = 32 << 20
# The largest SFTP answer accepted: paramiko's own reader refuses lengths of 16 MiB and more.
MAX_ANSWER_BYTES = (1 << 24) - 1
# A transfer that breaks off (server stopped, connection reset) surfaces as one of these.
_TRANSFER_ERRORS = (paramiko.SSHException, EOFError, ConnectionError, socket.timeout)


class SFTPConnectionError(ConnectionError):
    """The server could not be reached or would not let us in; says where and why, never the key."""


class HostKeyError(ConnectionError):
    """The server's host key is not the pinned one: possibly a different machine, so we refuse."""


class FileChangedError(RuntimeError):
    """The remote file changed while we read it; what we have is no consistent version of it."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    mtime: int  # epoch seconds, as SFTP v3 reports it


@dataclass(frozen=True)
class Download:
    sha256: str
    size: int
    mtime: int


@dataclass(frozen=True, kw_only=True, repr=False)
class SFTPSettings:
    """Everything needed to reach one partner server.

    ``host_key`` is the server's public host key as ``"<type> <base64>"`` (the key fields of a
    known_hosts line, as Airflow's SSH provider takes it). It is required: a server we cannot
    identify is never spoken to.
    """

    host: str
    port: int = 22
    username: str
    host_key: str
    private_key: str | None = None
    key_file: str | None = None
    passphrase: str | None = None
    path_prefix: str = ""
    timeout: float = 30
    prefetch_requests: int = DEFAULT_PREFETCH_REQUESTS

    def __post_init__(self) -> None:
        if not self.host_key or not str(self.host_key).strip():
            raise ValueError(
                f"{self.host}:{self.port}: no host_key pinned; the hub never connects "
                "to a server whose host key it does not know (there is no option to skip the check)"
            )
        parse_host_key(self.host_key)
        if not self.private_key and not self.key_file:
            raise ValueError(f"{self.host}:{self.port}: no client key; set key_file or private_key")
        if self.prefetch_requests < 1:
            raise ValueError("prefetch_requests must be at least 1")

    def __repr__(self) -> str:
        return (
            f"SFTPSettings(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"host_key={host_key_fingerprint(self.host_key)!r}, key_file={self.key_file!r}, "
            f"private_key={'<hidden>' if self.private_key else None}, "
            f"passphrase={'<hidden>' if self.passphrase else None}, path_prefix={self.path_prefix!r}, "
            f"timeout={self.timeout}, prefetch_requests={self.prefetch_requests})"
        )

    __str__ = __repr__

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_airflow_connection(cls, conn_id: str) -> SFTPSettings:
        """Read an Airflow connection: in a task, from plain Python, or from ``AIRFLOW_CONN_*``.

        login is the user and password the key's passphrase (extra ``private_key_passphrase``
        wins, as in Airflow's SSH provider); extras: ``key_file``, ``private_key``, ``host_key``,
        ``path_prefix``, ``timeout``, ``prefetch_requests``.
        """
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        extra = conn.extra_dejson
        if not extra.get("host_key"):
            raise ValueError(
                f"Airflow connection {conn_id!r} has no host_key extra; pin the server's "
                'host key ("ssh-ed25519 AAAA...") before the hub will connect'
            )
        if not conn.host or not conn.login:
            raise ValueError(f"Airflow connection {conn_id!r} needs a host and a login (the SFTP user)")
        options: dict[str, Any] = {}
        for name, convert in (("timeout", float), ("prefetch_requests", int), ("path_prefix", str)):
            if extra.get(name) not in (None, ""):
                options[name] = convert(extra[name])
        return cls(
            host=conn.host,
            port=int(conn.port or 22),
            username=conn.login,
            host_key=extra["host_key"],
            private_key=extra.get("private_key") or None,
            key_file=extra.get("key_file") or None,
            passphrase=extra.get("private_key_passphrase") or conn.password or None,
            **options,
        )


# --- keys ---------------------------------------------------------------------------------


def parse_host_key(line: str) -> paramiko.PKey:
    """``"<type> <base64> [comment]"`` → a public key; errors name the problem, not the data."""
    fields = str(line).split()
    if len(fields) < 2:
        raise ValueError("host_key must be '<key type> <base64>', e.g. 'ssh-ed25519 AAAA...'")
    key_type, data = fields[0], fields[1]
    try:
        key = paramiko.PKey.from_type_string(key_type, base64.b64decode(data, validate=True))
    except paramiko.UnknownKeyType:
        raise ValueError(f"host_key type {key_type!r} is not supported (ssh-ed25519, ecdsa-sha2-*, ssh-rsa)") from None
    except (binascii.Error, paramiko.SSHException, ValueError):
        raise ValueError(f"host_key is not a valid {key_type} public key") from None
    return key


def host_key_fingerprint(line: str) -> str:
    key = parse_host_key(line)
    return f"{key.get_name()} {key.fingerprint}"


KEY_CLASSES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def _load_private_key(settings: SFTPSettings) -> paramiko.PKey:
    source = "private_key extra" if settings.private_key else f"key_file {settings.key_file}"
    try:
        text = settings.private_key or Path(str(settings.key_file)).expanduser().read_text(encoding="ascii")
        return _parse_private_key(text, settings.passphrase)
    except paramiko.PasswordRequiredException:
        reason = "is encrypted and no passphrase was given"
    except FileNotFoundError:
        reason = "does not exist"
    except (OSError, UnicodeDecodeError) as exc:
        reason = f"could not be read ({type(exc).__name__})"
    except paramiko.SSHException:
        reason = "could not be loaded (wrong passphrase, or not an OpenSSH/PEM Ed25519, ECDSA or RSA key)"
    raise SFTPConnectionError(f"{settings.address}: client key from {source} {reason}")


def _parse_private_key(text: str, passphrase: str | None) -> paramiko.PKey:
    """Try each key type in turn, like OpenSSH; a passphrase on an unencrypted key is ignored.

    (``paramiko.PKey.from_path`` would guess the type, but in paramiko 5.1 it fails on any
    passphrase given as ``str``.)
    """
    for key_class in KEY_CLASSES:
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase)
        except paramiko.PasswordRequiredException:
            raise
        except (paramiko.SSHException, ValueError):
            continue
    raise paramiko.SSHException("not a loadable private key")


# --- the connector ------------------------------------------------------------------------


class SFTPConnector:
    """One SFTP session with a partner; use as a context manager, or connect()/close()."""

    def __init__(self, settings: SFTPSettings):
        self.settings = settings
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def __repr__(self) -> str:
        state = "connected" if self._sftp is not None else "not connected"
        return f"SFTPConnector({self.settings.username}@{self.settings.address}, {state})"

    def __enter__(self) -> SFTPConnector:
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- session ---------------------------------------------------------------------------
    def connect(self) -> None:
        if self._sftp is not None:
            return
        settings = self.settings
        pkey = _load_private_key(settings)
        client = _pinned_client(settings)
        try:
            client.connect(
                settings.host,
                port=settings.port,
                username=settings.username,
                pkey=pkey,
                timeout=settings.timeout,
                banner_timeout=settings.timeout,
                auth_timeout=settings.timeout,
                channel_timeout=settings.timeout,
                allow_agent=False,
                look_for_keys=False,
                transport_factory=_transport,
            )
            sftp = _open_sftp(client.get_transport())
            sftp.get_channel().settimeout(settings.timeout)
        except BaseException as exc:
            client.close()
            _raise_connection_error(settings, exc)
            raise
        self._client, self._sftp = client, sftp
        log.info(
            "connected to %s@%s (host key %s)",
            settings.username,
            settings.address,
            host_key_fingerprint(settings.host_key),
        )

    def close(self) -> None:
        """Never raises: closing a session the server already dropped must not hide why it dropped."""
        for part in (self._sftp, self._client):
            if part is not None:
                try:
                    part.close()
                except Exception as exc:  # noqa: BLE001 - a dead session has nothing left to close
                    log.debug("closing the session to %s: %s", self.settings.address, type(exc).__name__)
        self._sftp = self._client = None

    @property
    def sftp(self) -> paramiko.SFTPClient:
        """The live SFTP client, connecting on first use."""
        self.connect()
        return self._sftp

    def remote_path(self, path: str) -> str:
        """Where ``path`` (as in the contract) is on the server, given ``path_prefix``."""
        prefix = self.settings.path_prefix.rstrip("/")
        if not prefix:
            return path
        return f"{prefix}/{path.lstrip('/')}"

    # --- verbs -----------------------------------------------------------------------------
    def list(self, directory: str) -> list[RemoteFile]:
        """Regular files in ``directory`` (no subdirectories, links or devices), sorted by name."""
        entries = self.sftp.listdir_attr(self.remote_path(directory))
        files = [
            RemoteFile(e.filename, e.st_size, int(e.st_mtime))
            for e in entries
            if e.st_mode is not None and stat.S_ISREG(e.st_mode)
        ]
        return sorted(files, key=lambda f: f.name)

    def stat(self, path: str) -> RemoteFile:
        attrs = self.sftp.stat(self.remote_path(path))
        return RemoteFile(os.path.basename(path.rstrip("/")), attrs.st_size, int(attrs.st_mtime))

    def download(self, remote_path: str, local_path: Path | str) -> Download:
        """Land ``remote_path`` at ``local_path`` whole and unchanged, or leave nothing.

        The bytes go to a hidden ``.part`` file beside the target and are renamed into place
        only after the size matches and a second stat shows the remote file did not change
        while we read it (a partner re-sending under the same name, or still writing).
        """
        target = Path(local_path)
        before = self.stat(remote_path)
        _ensure_private_dir(target.parent)
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                sha256, size = self._copy(remote_path, out, before.size)
                out.flush()
                os.fsync(out.fileno())
            after = self.stat(remote_path)
            _check_unchanged(remote_path, before, after, size)
            os.replace(temp, target)
        except BaseException as exc:
            temp.unlink(missing_ok=True)
            if isinstance(exc, _TRANSFER_ERRORS) and not isinstance(exc, (SFTPConnectionError, HostKeyError)):
                raise SFTPConnectionError(
                    f"{self.settings.address}: connection lost while fetching {remote_path} "
                    f"({': '.join(filter(None, (type(exc).__name__, str(exc).strip())))}); nothing landed, "
                    "the next try fetches it again"
                ) from exc
            raise
        fsync_dir(target.parent)
        return Download(sha256=sha256, size=size, mtime=before.mtime)

    def _copy(self, remote_path: str, out: BinaryIO, expected_size: int) -> tuple[str, int]:
        """Stream the remote file into ``out`` with many reads in flight, hashing as it goes.

        Reads are pipelined here, in this thread: up to ``prefetch_requests`` requests of
        ``READ_REQUEST_BYTES`` are outstanding (topped up a quarter at a time, so several go in one
        SSH packet), and each answer is written as soon as it is the next one due. (paramiko's own
        prefetch issues 32 KiB requests from a helper thread that sleeps 10 ms whenever its queue
        is full, which left the link idle most of the time.) The file is read to its end, not just
        to the size first seen, so growth is noticed. Joining each answer's packets, hashing and
        writing happen in a second thread (see ``_HashingWriter``), overlapping the reads.
        """
        size = 0
        sink = _HashingWriter(out)
        try:
            with self.sftp.open(self.remote_path(remote_path), "rb") as remote:
                reads = _Reads(self.sftp, remote.handle)
                offset, depth = 0, self.settings.prefetch_requests
                while True:
                    if depth - len(reads.pending) >= max(1, depth // 4):
                        offset = reads.request(offset, expected_size, depth)
                    if not reads.pending:
                        break
                    length, data = reads.next()
                    sink.put(data)
                    got = sum(map(len, data))
                    size += got
                    if got < length:  # a short answer (allowed by SFTP): the rest comes next, in order
                        reads.discard_pending()  # re-read from here
                        offset = size
                        if not got:
                            break
                while True:  # the file grew since it was listed: read on; the caller refuses it
                    reads.request(size, size + READ_REQUEST_BYTES, 1)
                    data = reads.next()[1]
                    if not (got := sum(map(len, data))):
                        break
                    sink.put(data)
                    size += got
        finally:
            sha256 = sink.finish()
        return sha256, size

    # --- sending (receipts to partners, deliveries to recipients) ----------------------------
    def write_bytes(self, remote_path: str, data: bytes) -> Download:
        """Leave ``data`` at ``remote_path`` whole or not at all (receipts to the partner)."""

        def write(remote: paramiko.SFTPFile) -> tuple[str, int]:
            remote.write(data)
            return hashlib.sha256(data).hexdigest(), len(data)

        return self._place(remote_path, write)

    def upload(
        self, local_path: Path | str, remote_path: str, *, progress: Callable[[int], None] | None = None
    ) -> Download:
        """Place a local file at ``remote_path`` so the recipient sees all of it or nothing.
        ``progress`` is called with the bytes sent so far."""

        def write(remote: paramiko.SFTPFile) -> tuple[str, int]:
            digest, size = hashlib.sha256(), 0
            with open(local_path, "rb") as local:
                while chunk := local.read(CHUNK_SIZE):
                    remote.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if progress is not None:
                        progress(size)
            return digest.hexdigest(), size

        return self._place(remote_path, write)

    def ensure_dir(self, directory: str) -> None:
        """Create ``directory`` and any missing parents on the server (like ``mkdir -p``)."""
        self._makedirs(self.remote_path(directory))

    def _place(self, remote_path: str, write: Callable[[paramiko.SFTPFile], tuple[str, int]]) -> Download:
        """The one way the hub writes to someone else's server.

        The bytes go to a hidden ``.<name>.part`` beside the target (what a reader's script skips;
        a dropped connection leaves only that, and the next attempt overwrites it), are renamed
        into place with OpenSSH's atomic ``posix-rename``, and are then checked: the size by stat,
        the content by reading it back and comparing SHA-256 (OpenSSH offers no server-side
        checksum). A mismatch removes the file and raises, so the next run sends it again.
        """
        path = self.remote_path(remote_path)
        directory, name = posixpath.split(path)
        self._makedirs(directory)
        temp = posixpath.join(directory, f".{name}.part")
        try:
            with self.sftp.open(temp, "wb") as remote:
                remote.set_pipelined(True)
                sha256, size = write(remote)
            self._rename_into_place(temp, path)
        except BaseException:
            try:
                self.sftp.remove(temp)
            except (OSError, EOFError):
                pass  # the connection may be gone; the next attempt overwrites the temp file
            raise
        landed = self.stat(remote_path)
        with open(os.devnull, "wb") as sink:
            remote_sha, _ = self._copy(remote_path, sink, landed.size)
        if landed.size != size or remote_sha != sha256:
            self.sftp.remove(path)
            raise FileChangedError(
                f"{remote_path}: sent {size} bytes but the server holds {landed.size} "
                "with a different SHA-256; removed it, the next run sends it again"
            )
        return Download(sha256=remote_sha, size=size, mtime=landed.mtime)

    def _rename_into_place(self, temp: str, path: str) -> None:
        try:
            self.sftp.posix_rename(temp, path)
        except OSError:  # a server without the posix-rename extension: plain rename needs no target
            try:
                self.sftp.remove(path)
            except OSError:
                pass
            self.sftp.rename(temp, path)

    def _makedirs(self, directory: str) -> None:
        missing = []
        while directory not in ("", "/"):
            try:
                self.sftp.stat(directory)
                break
            except OSError:
                missing.append(directory)
                directory = posixpath.dirname(directory)
        for d in reversed(missing):
            try:
                self.sftp.mkdir(d)
            except OSError:
                self.sftp.stat(d)  # created meanwhile by someone else is fine; anything else raises


def _open_sftp(transport: paramiko.Transport) -> paramiko.SFTPClient:
    """``SFTPClient.from_transport``, with the channel's receive buffer swapped for a ``_ChunkPipe``
    before the server can send anything."""
    channel = transport.open_session(window_size=SFTP_WINDOW_SIZE, max_packet_size=SFTP_MAX_PACKET_SIZE)
    if channel is None:
        raise paramiko.SSHException("server refused the sftp subsystem")
    channel.in_buffer = _ChunkPipe()
    channel.invoke_subsystem("sftp")
    return paramiko.SFTPClient(channel)


class _Chunks:
    """The part of ``array.array`` paramiko's ``BufferedPipe`` uses (len, frombytes, taking from
    the front), kept as a queue of the received chunks with an offset into the first."""

    def __init__(self) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._start = 0  # bytes of the first chunk already taken
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def frombytes(self, data: bytes) -> None:
        if data:
            self._chunks.append(bytes(data))  # paramiko passes bytes: no copy
            self._size += len(data)

    def peek(self, limit: int | None = None) -> bytes:
        """The first ``limit`` bytes (all when None), copied at most once."""
        wanted = self._size if limit is None else min(limit, self._size)
        if not wanted:
            return b""
        first, start = self._chunks[0], self._start
        if len(first) - start >= wanted:
            return first if start == 0 and len(first) == wanted else first[start : start + wanted]
        parts: list[memoryview] = []
        for chunk in self._chunks:
            view = memoryview(chunk)[start : start + wanted]
            parts.append(view)
            wanted -= len(view)
            start = 0
            if not wanted:
                break
        return b"".join(parts)

    def take(self, count: int) -> list[bytes | memoryview]:
        """Remove and return the first ``count`` bytes (at most what is there) as the chunks
        that hold them, uncopied: a partly taken chunk is given as a memoryview of its part."""
        parts: list[bytes | memoryview] = []
        count = min(count, self._size)
        self._size -= count
        while count:
            first, start = self._chunks[0], self._start
            left = len(first) - start
            if left <= count:
                self._chunks.popleft()
                self._start = 0
                parts.append(first if start == 0 else memoryview(first)[start:])
                count -= left
            else:
                parts.append(memoryview(first)[start : start + count])
                self._start = start + count
                count = 0
        return parts

    def __delitem__(self, front: slice) -> None:
        """``del chunks[:n]`` drops the first n bytes (``del chunks[:]`` all) without moving the rest."""
        if front.start not in (None, 0) or front.step is not None:
            raise ValueError("only the front of the buffer can be removed")
        count = self._size if front.stop is None else min(front.stop, self._size)
        self._size -= count
        count += self._start
        while self._chunks and count >= len(self._chunks[0]):
            count -= len(self._chunks.popleft())
        self._start = count if self._chunks else 0


class _ChunkPipe(BufferedPipe):
    """paramiko's channel receive buffer, without moving the backlog on every read, and with one
    wake-up per read instead of one per SSH packet.

    ``BufferedPipe`` appends what arrives to one array and deletes what is read from its front,
    which moves everything still unread: with 32 reads of 255 KiB in flight, megabytes per read,
    twice per SFTP message (its length, then its body). py-spy put that at a quarter of the
    connector's time. And its ``read`` returns as soon as anything is there, so a reader that
    needs 255 KiB woke (and took the GIL) for every 32 KiB packet OpenSSH sends. Here ``read``
    waits until ``nbytes`` are there, the pipe closes, or the timeout passes with something
    there (a slow link still makes progress; nothing at all within the timeout still raises).
    Only the SFTP channel gets this pipe: its readers (ours and paramiko's) always ask for the
    exact length of what they need next, never for "whatever has arrived".
    """

    def __init__(self) -> None:
        super().__init__()
        self._buffer = _Chunks()
        self._wanted = 1  # bytes the waiting reader needs; fewer arriving do not wake it

    def _buffer_tobytes(self, limit: int | None = None) -> bytes:
        return self._buffer.peek(limit)

    def feed(self, data: bytes) -> None:
        with self._lock:
            if self._event is not None:
                self._event.set()
            self._buffer.frombytes(data)
            if len(self._buffer) >= self._wanted:
                self._cv.notify_all()

    def read(self, nbytes: int, timeout: float | None = None) -> bytes:
        with self._lock:
            self._wait(nbytes, timeout)
            out = self._buffer.peek(nbytes)
            del self._buffer[:nbytes]
            self._drained()
            return out

    def read_parts(self, nbytes: int, timeout: float | None = None) -> list[bytes | memoryview]:
        """Like ``read``, but the bytes stay in the chunks they arrived in (no copy)."""
        with self._lock:
            self._wait(nbytes, timeout)
            parts = self._buffer.take(nbytes)
            self._drained()
            return parts

    def _wait(self, nbytes: int, timeout: float | None) -> None:
        """(Holding the lock.) Until ``nbytes`` are there, the pipe closes, or the timeout passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._buffer) < nbytes and not self._closed:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                if self._buffer:
                    break
                raise PipeTimeout()
            self._wanted = nbytes
            try:
                self._cv.wait(left)
            finally:
                self._wanted = 1

    def _drained(self) -> None:
        if not self._buffer and self._event is not None and not self._closed:
            self._event.clear()


class _HashingWriter:
    """SHA-256 and write in a thread of its own, fed in order through a bounded queue.

    Each item is one answer's data as the SSH packets that brought it; they are joined here, not
    in the reading thread. On a 2-core machine the pull is CPU-bound (transport, reader, this
    thread, sshd), and the reader holding the GIL for that copy kept the transport thread waiting:
    500 MiB took 1.21 s on average with the join in the reader, 1.11 s with it here (15 pulls
    each, alternating). Hashing each packet apart instead was slower still (1.25 s): hashlib lets
    go of the GIL for every update, eight times per answer.

    Every ``WRITEBACK_BYTES`` written, the kernel is asked to start writing them to disk, so the
    caller's closing ``fsync`` does not wait for the whole file at once (a blocking ``fdatasync``
    here instead stalled the reads by as much as it saved)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.error: BaseException | None = None
        self._written = self._flushed = 0  # bytes written; of those, handed to writeback
        self._queue: queue.Queue[list[bytes | memoryview] | None] = queue.Queue(maxsize=64)
        self._thread = threading.Thread(target=self._run, name="sftp-hash-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (parts := self._queue.get()) is not None:
            if self.error is None:
                try:
                    data = parts[0] if len(parts) == 1 else b"".join(parts)
                    self.digest.update(data)
                    self.out.write(data)
                    self._written += len(data)
                    if self._written - self._flushed >= WRITEBACK_BYTES:
                        self._start_writeback()
                except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                    self.error = exc

    def _start_writeback(self) -> None:
        self.out.flush()
        start_writeback(self.out.fileno(), self._flushed, self._written - self._flushed)
        self._flushed = self._written

    def put(self, parts: list[bytes | memoryview]) -> None:
        """The next bytes of the file, in the pieces they arrived in."""
        if self.error is not None:
            raise self.error
        self._queue.put(parts)

    def finish(self) -> str:
        """Wait until everything is written; the digest, or the writing error."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self.digest.hexdigest()


class _Reads:
    """READ requests for one open remote file, many in flight, their answers taken in order.

    The data path bypasses paramiko's SFTPClient: requests are packed here and sent several to
    one SSH packet, and each answer's data is taken off the channel's buffer as the SSH packets
    that brought it, uncopied (paramiko slices it three times and wraps every answer in a Message
    under a lock); the writer thread joins them once. Request numbers come from the client's own
    counter, so they never clash with its requests; answers to requests we gave up on are skipped
    by the client's own reader, as it does for any answer it does not expect. Servers may answer
    out of order (SFTP allows it); such answers wait in ``early`` until they are due.
    """

    def __init__(self, sftp: paramiko.SFTPClient, handle: bytes) -> None:
        self.sftp = sftp
        self.channel = sftp.get_channel()
        self.handle = handle
        self.pending: collections.deque[tuple[int, int]] = collections.deque()  # (request number, length)
        self.early: dict[int, tuple[int, list[bytes | memoryview]]] = {}

    def request(self, offset: int, end: int, depth: int) -> int:
        """Ask for ``[offset, end)`` in reads of READ_REQUEST_BYTES until ``depth`` are in flight,
        all in one send; returns the offset after the last one asked for."""
        ranges: list[tuple[int, int]] = []
        while len(self.pending) + len(ranges) < depth and offset < end:
            ranges.append((offset, min(READ_REQUEST_BYTES, end - offset)))
            offset += ranges[-1][1]
        if ranges:
            first = _take_request_numbers(self.sftp, len(ranges))
            numbered = [(first + i, start, length) for i, (start, length) in enumerate(ranges)]
            try:
                self.channel.sendall(
                    b"".join(_read_request(n, self.handle, start, length) for n, start, length in numbered)
                )
            except OSError as exc:  # paramiko: socket.error("Socket is closed") once the server hung up
                if self.channel.closed:
                    raise EOFError("the server closed the SFTP channel") from exc
                raise
            self.pending.extend((n, length) for n, _, length in numbered)
        return offset

    def next(self) -> tuple[int, list[bytes | memoryview]]:
        """(length asked for, data in the pieces it arrived in) of the oldest request; no pieces
        at the end of the file."""
        number, length = self.pending.popleft()
        while number not in self.early:
            answered, kind, body = _read_answer(self.channel)
            self.early[answered] = (kind, body)
        kind, body = self.early.pop(number)
        if kind == CMD_DATA:
            return length, body
        if kind == CMD_STATUS:
            try:
                self.sftp._convert_status(paramiko.Message(b"".join(body)))
            except EOFError:
                return length, []
        raise paramiko.SFTPError(f"unexpected answer to a read request (type {kind})")

    def discard_pending(self) -> None:
        """Wait for and drop the answers still due (after a short read)."""
        while self.pending:
            self.next()


def _take_request_numbers(sftp: paramiko.SFTPClient, count: int) -> int:
    """The first of ``count`` request numbers reserved from the client's counter."""
    with sftp._lock:
        first = sftp.request_number
        sftp.request_number += count
    return first


def _read_request(number: int, handle: bytes, offset: int, length: int) -> bytes:
    """SSH_FXP_READ: uint32 length, byte type, uint32 id, string handle, uint64 offset, uint32 len."""
    return (
        struct.pack(">IBII", 1 + 4 + 4 + len(handle) + 8 + 4, CMD_READ, number, len(handle))
        + handle
        + struct.pack(">QI", offset, length)
    )


def _read_answer(channel: paramiko.Channel) -> tuple[int, int, list[bytes | memoryview]]:
    """One SFTP message off the channel: (request number, type, body after the number, in pieces).

    For SSH_FXP_DATA the body is the data itself, in the pieces (SSH packets) it arrived in: its
    length field is read apart, and the data is never joined or sliced again. Anything after the
    data string (later SFTP versions) is read and dropped.
    """
    size, kind, number = struct.unpack(">IBI", _recv_exact(channel, 9))
    if not 5 <= size <= MAX_ANSWER_BYTES:
        raise paramiko.SFTPError(f"malformed answer from the server (length {size})")
    rest = size - 5
    if kind != CMD_DATA or rest < 4:
        return number, kind, _recv_parts(channel, rest)
    (length,) = struct.unpack(">I", _recv_exact(channel, 4))
    if length > rest - 4:
        raise paramiko.SFTPError("malformed data answer from the server")
    data = _recv_parts(channel, length)
    _recv_parts(channel, rest - 4 - length)
    return number, kind, data


def _recv_exact(channel: paramiko.Channel, count: int) -> bytes:
    """Exactly ``count`` bytes from the channel, as one string (EOFError if it closes first)."""
    return b"".join(_recv_parts(channel, count))


def _recv_parts(channel: paramiko.Channel, count: int) -> list[bytes | memoryview]:
    """Exactly ``count`` bytes from the channel as the pieces they arrived in (EOFError if it
    closes first). What ``Channel.recv`` does, window adjustment included, without its copy;
    every read of the SFTP channel here goes through it."""
    pipe: _ChunkPipe = channel.in_buffer  # _open_sftp puts it there
    parts: list[bytes | memoryview] = []
    while count:
        try:
            got = pipe.read_parts(count, channel.timeout)
        except PipeTimeout:
            raise TimeoutError(f"nothing from the server within {channel.timeout} s") from None
        received = sum(map(len, got))
        if not received:
            raise EOFError("the server closed the SFTP channel")
        _adjust_window(channel, received)
        parts.extend(got)
        count -= received
    return parts


def _adjust_window(channel: paramiko.Channel, received: int) -> None:
    """Tell the server it may send ``received`` bytes more, as ``Channel.recv`` does."""
    ack = channel._check_add_window(received)
    if ack > 0:
        message = paramiko.Message()
        message.add_byte(cMSG_CHANNEL_WINDOW_ADJUST)
        message.add_int(channel.remote_chanid)
        message.add_int(ack)
        channel.transport._send_user_message(message)


def _check_unchanged(remote_path: str, before: RemoteFile, after: RemoteFile, received: int) -> None:
    if (after.size, after.mtime) != (before.size, before.mtime):
        raise FileChangedError(
            f"{remote_path} changed during the transfer (size {before.size} → {after.size}, "
            f"mtime {before.mtime} → {after.mtime}); nothing landed, it will be fetched again"
        )
    if received != before.size:
        raise FileChangedError(
            f"{remote_path}: received {received} bytes but the server reported {before.size}; nothing landed"
        )


def _ensure_private_dir(directory: Path) -> None:
    """Create missing directories 0700: landed files hold personal data until processed."""
    missing = []
    for d in [directory, *directory.parents]:
        if d.is_dir():
            break
        missing.append(d)
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass
        else:
            d.chmod(0o700)  # mkdir's mode is filtered by the umask


# --- host-key pinning and connection errors -----------------------------------------------


# AES-GCM first when the server offers it: one pass for cipher and integrity instead of AES-CTR
# plus a separate HMAC per packet (measured ~15% faster on loopback); the rest as paramiko orders them.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _transport(sock: Any, **kwargs: Any) -> paramiko.Transport:
    """A Transport preferring AES-GCM, on a TCP socket without Nagle's delay.

    paramiko leaves Nagle's algorithm on, so a small message sent while an earlier one is still
    unacknowledged waits for the peer's delayed ACK (40 ms on Linux): connecting took 0.107 s
    instead of 0.064, and a 300 MiB pull 0.72 s instead of 0.59 (the read requests are small).
    """
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock, **kwargs)
    offered = transport._preferred_ciphers
    transport._preferred_ciphers = tuple(c for c in PREFERRED_CIPHERS if c in offered) + tuple(
        c for c in offered if c not in PREFERRED_CIPHERS
    )
    return transport


def _known_hosts_name(settings: SFTPSettings) -> str:
    return settings.host if settings.port == 22 else f"[{settings.host}]:{settings.port}"


def _pinned_client(settings: SFTPSettings) -> paramiko.SSHClient:
    """An SSHClient that knows exactly one host key, the pinned one, and rejects anything else.

    No known_hosts file, system or user, is read: the connection's pin is the only truth.
    """
    key = parse_host_key(settings.host_key)
    client = paramiko.SSHClient()
    client.get_host_keys().add(_known_hosts_name(settings), key.get_name(), key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


def _raise_connection_error(settings: SFTPSettings, exc: BaseException) -> None:
    """Re-raise ``exc`` as HostKeyError or SFTPConnectionError when it is one of those."""
    where = settings.address
    if isinstance(exc, paramiko.BadHostKeyException):
        expected, offered = exc.expected_key, exc.key
        raise HostKeyError(
            f"{where}: host key mismatch, refusing to connect. Pinned {expected.get_name()} {expected.fingerprint}, "
            f"server offered {offered.get_name()} {offered.fingerprint}. If the partner really changed its key, "
            "confirm the new fingerprint with them and update the connection's host_key extra."
        ) from exc
    if isinstance(exc, paramiko.AuthenticationException):
        raise SFTPConnectionError(
            f"{where}: authentication failed for user {settings.username!r} "
            f"({exc}); is the hub's public key in the partner's authorized_keys?"
        ) from exc
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        raise SFTPConnectionError(f"{where}: connection refused") from exc
    if isinstance(exc, (socket.timeout, TimeoutError)):
        raise SFTPConnectionError(f"{where}: timed out after {settings.timeout:g} s") from exc
    if isinstance(exc, socket.gaierror):
        raise SFTPConnectionError(f"{where}: host name could not be resolved ({exc.strerror})") from exc
    if isinstance(exc, OSError):
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0) or str(exc) or type(exc).__name__
        raise SFTPConnectionError(f"{where}: {reason}") from exc
    # paramiko reports a silent server in one of two ways, depending on which of its timers fires
    # first: the banner read in its transport thread, or start_client giving up without raising.
    text = str(exc) if isinstance(exc, paramiko.SSHException) else ""
    banner_error = "Error reading SSH protocol banner"
    if text == banner_error or text == "No existing session":
        raise SFTPConnectionError(
            f"{where}: no SSH handshake within {settings.timeout:g} s (server silent, overloaded, or not an SSH server)"
        ) from exc
    if text.startswith(banner_error):
        raise SFTPConnectionError(f"{where}: no SSH banner from the server ({text[len(banner_error) :]})") from exc
    if isinstance(exc, paramiko.SSHException):
        raise SFTPConnectionError(f"{where}: SSH error: {exc or type(exc).__name__}") from exc
