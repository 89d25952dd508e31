"""The connector's fast read path against an in-memory SFTP server, and its channel buffer
against paramiko's own.

The fast path packs its own READ requests, reads answers straight off the channel and keeps
the channel's unread data as a queue of chunks. These tests hold it to the straightforward
result: every byte of the source, in order, and its SHA-256, also when the server answers
short, out of order, or in pieces of any size. (tests/integration/test_sftp_equivalence.py
does the same against a real sshd.)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
import struct
import threading
import time
from types import SimpleNamespace

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paramiko.buffered_pipe import BufferedPipe, PipeTimeout
from paramiko.common import MSG_CHANNEL_WINDOW_ADJUST
from paramiko.sftp import CMD_DATA, CMD_READ, CMD_STATUS, SFTP_EOF, SFTP_PERMISSION_DENIED

from samverkan.connectors.sftp import (
    DEFAULT_PREFETCH_REQUESTS,
    READ_REQUEST_BYTES,
    SFTPConnector,
    SFTPSettings,
    _ChunkPipe,
)

pytestmark = pytest.mark.unit

R = READ_REQUEST_BYTES
FIRST_NUMBER = 7  # the client has made requests of its own before the download


class FakeServer:
    """The far end of the SFTP channel, in memory: answers READ requests for one file.

    ``max_answer`` caps each answer (SFTP lets a server answer short); ``reverse`` answers each
    batch of requests last first; the answers arrive in the channel's buffer (a ``_ChunkPipe``,
    as in a real connection) in pieces of random size, the way SSH packets split them. ``deny``
    answers every read with "permission denied". It also plays the channel: it counts the bytes
    the client took and the window it re-opened.
    """

    timeout = 0.0  # all the client asked for is in the buffer: waiting for more times out at once
    remote_chanid = 42

    def __init__(self, data: bytes, *, max_answer: int | None = None, reverse: bool = False,
                 deny: bool = False, seed: int = 0) -> None:
        self.data, self.max_answer, self.reverse, self.deny = data, max_answer, reverse, deny
        self.random = random.Random(seed)
        self.in_buffer = _ChunkPipe()
        self.numbers: list[int] = []
        self.sends = 0
        self.delivered = self.taken = self.adjusted = 0  # bytes sent, taken by the client, re-opened
        self.transport = SimpleNamespace(_send_user_message=self._window_adjustment)

    def sendall(self, packets: bytes) -> None:
        self.sends += 1
        answers, view = [], memoryview(packets)
        while view:
            (length,) = struct.unpack(">I", view[:4])
            body, view = view[4 : 4 + length], view[4 + length :]
            kind, number, handle_length = struct.unpack(">BII", body[:9])
            assert kind == CMD_READ
            assert bytes(body[9 : 9 + handle_length]) == b"handle-1"
            offset, size = struct.unpack(">QI", body[9 + handle_length :])
            self.numbers.append(number)
            answers.append(self._answer(number, offset, size))
        if self.reverse:
            answers.reverse()
        view = memoryview(b"".join(answers))
        self.delivered += len(view)
        while view:
            piece = self.random.randint(1, 70_000)
            self.in_buffer.feed(bytes(view[:piece]))
            view = view[piece:]

    def _answer(self, number: int, offset: int, size: int) -> bytes:
        if self.deny:
            return _status(number, SFTP_PERMISSION_DENIED, "permission denied")
        chunk = self.data[offset : offset + min(size, self.max_answer or size)]
        if not chunk:
            return _status(number, SFTP_EOF, "end of file")
        return _message(CMD_DATA, number, struct.pack(">I", len(chunk)) + chunk)

    def _check_add_window(self, count: int) -> int:
        self.taken += count
        return count  # re-opened at once (paramiko waits until a tenth of the window is taken)

    def _window_adjustment(self, message: paramiko.Message) -> None:
        message = paramiko.Message(message.asbytes())
        assert message.get_byte() == bytes([MSG_CHANNEL_WINDOW_ADJUST])
        assert message.get_int() == self.remote_chanid
        self.adjusted += message.get_int()


def _message(kind: int, number: int, payload: bytes) -> bytes:
    return struct.pack(">IBI", 5 + len(payload), kind, number) + payload


def _status(number: int, code: int, text: str) -> bytes:
    message = text.encode()
    return _message(CMD_STATUS, number, struct.pack(">II", code, len(message)) + message + struct.pack(">I", 0))


class FakeClient:
    """What the connector uses of paramiko's SFTPClient while it reads a file."""

    _convert_status = paramiko.SFTPClient._convert_status  # paramiko's own mapping of status codes

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self._lock = threading.Lock()
        self.request_number = FIRST_NUMBER

    def get_channel(self) -> FakeServer:
        return self.server

    @contextlib.contextmanager
    def open(self, path: str, mode: str):
        yield SimpleNamespace(handle=b"handle-1")


@pytest.fixture(scope="module")
def settings() -> SFTPSettings:
    public = Ed25519PrivateKey.generate().public_key()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return SFTPSettings(host="127.0.0.1", port=2222, username="hub", host_key=line,
                        private_key="never loaded: these tests do not connect")


def copy(settings: SFTPSettings, server: FakeServer, expected_size: int) -> tuple[str, int, bytes]:
    connector = SFTPConnector(settings)
    connector._sftp = FakeClient(server)  # connect() sees a session and leaves it be
    out = io.BytesIO()
    sha256, size = connector._copy("/export/file.csv", out, expected_size)
    return sha256, size, out.getvalue()


SIZES = [0, 1, R - 1, R, R + 1, 2 * R + 1, DEFAULT_PREFETCH_REQUESTS * R - 1, DEFAULT_PREFETCH_REQUESTS * R,
         DEFAULT_PREFETCH_REQUESTS * R + 1, 33 * R + 12_345]
SERVERS = {
    "whole answers": {},
    "short answers": {"max_answer": 100_000},
    "one byte short": {"max_answer": R - 1},  # every full read comes back short, the last one too
    "out of order": {"reverse": True},
    "short and out of order": {"max_answer": 65_536, "reverse": True},
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("behaviour", SERVERS)
def test_copy_lands_every_byte_of_the_source_with_its_sha256(settings, size, behaviour):
    data = random.Random(size).randbytes(size)
    server = FakeServer(data, seed=size, **SERVERS[behaviour])
    sha256, landed, written = copy(settings, server, size)
    assert written == data
    assert (sha256, landed) == (hashlib.sha256(data).hexdigest(), size)
    assert server.taken == server.delivered  # every answer read to its end, nothing left over


def test_the_data_read_in_pieces_reopens_the_window_for_every_byte(settings):
    """The data goes straight from the buffer, past ``Channel.recv`` (which re-opens the window);
    the window must be re-opened for it all the same, or the server stops sending."""
    data = random.Random(5).randbytes(40 * R + 7)
    server = FakeServer(data, max_answer=100_000)
    copy(settings, server, len(data))
    assert len(data) <= server.adjusted <= server.taken


def test_request_numbers_come_from_the_client_and_never_repeat(settings):
    data = random.Random(1).randbytes(5 * R + 3)
    server = FakeServer(data, max_answer=100_000)
    copy(settings, server, len(data))
    client_next = FIRST_NUMBER + len(server.numbers)
    assert sorted(server.numbers) == list(range(FIRST_NUMBER, client_next))
    assert server.sends < len(server.numbers)  # several requests to a send


def test_requests_stay_within_the_depth_and_the_request_size(settings):
    data = random.Random(2).randbytes(70 * R)
    server = FakeServer(data)
    asked = []
    original = server.sendall

    def sendall(packets: bytes) -> None:
        asked.append(len(server.numbers))
        original(packets)
        asked[-1] = len(server.numbers) - asked[-1]

    server.sendall = sendall
    copy(settings, server, len(data))
    assert max(asked) <= DEFAULT_PREFETCH_REQUESTS
    assert len(server.numbers) == 70 + 1  # one read per 255 KiB, and one more that finds the end


def test_a_file_that_grew_is_read_to_its_end(settings):
    """The caller refuses it (size differs from the stat); the copy must not stop early."""
    data = random.Random(3).randbytes(3 * R + 10)
    sha256, landed, written = copy(settings, FakeServer(data), 2 * R)
    assert (written, landed, sha256) == (data, len(data), hashlib.sha256(data).hexdigest())


def test_a_refused_read_raises_the_servers_error(settings):
    with pytest.raises(PermissionError, match="permission denied"):
        copy(settings, FakeServer(b"x" * 1000, deny=True), 1000)


class HungUpServer(FakeServer):
    """A server that hangs up after its first batch of answers: paramiko then refuses to send on
    the closed channel with a bare ``socket.error("Socket is closed")``."""

    closed = False

    def sendall(self, packets: bytes) -> None:
        if self.sends:
            self.closed = True
            raise OSError("Socket is closed")
        super().sendall(packets)


def test_a_server_that_hangs_up_mid_transfer_is_a_lost_connection(settings):
    """EOFError, one of the errors download() reports as "connection lost ... nothing landed"
    (the CI run of 30 November met this one in test_resilience_faults as a bare OSError)."""
    from samverkan.connectors.sftp import _TRANSFER_ERRORS

    with pytest.raises(EOFError, match="closed the SFTP channel") as caught:
        copy(settings, HungUpServer(b"x" * (40 * R)), 40 * R)
    assert isinstance(caught.value, _TRANSFER_ERRORS)


# --- the channel buffer -------------------------------------------------------------------


def test_chunk_pipe_gives_what_paramikos_buffered_pipe_gives():
    """The same feeds and reads, in a random mix of sizes, give the same bytes and lengths."""
    rng = random.Random(4)
    ours, theirs = _ChunkPipe(), BufferedPipe()
    for _ in range(3000):
        if rng.random() < 0.45:
            data = rng.randbytes(rng.choice([0, 1, 4, 9, 1000, 32_768, 262_144]))
            ours.feed(data)
            theirs.feed(data)
        elif len(theirs) == 0:
            with pytest.raises(PipeTimeout):
                ours.read(10, timeout=0.0)
        else:
            count = rng.choice([1, 4, 9, 4096, R + 13, 10**7])
            expected = theirs.read(count, timeout=0.0)
            if rng.random() < 0.5:
                assert ours.read(count, timeout=0.0) == expected
            else:  # the same bytes, left in the pieces they arrived in
                assert b"".join(ours.read_parts(count, timeout=0.0)) == expected
        assert len(ours) == len(theirs)
        assert ours.read_ready() == theirs.read_ready()
    assert ours.empty() == theirs.empty()
    assert len(ours) == 0


def test_chunk_pipe_wakes_a_waiting_reader_and_ends_when_closed():
    pipe = _ChunkPipe()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend([pipe.read(10), pipe.read(10), pipe.read(10)]))
    reader.start()
    pipe.feed(b"0123456789ab")
    pipe.close()
    reader.join(timeout=10)
    assert got == [b"0123456789", b"ab", b""]


def test_chunk_pipe_reader_gets_all_it_asked_for_in_one_piece():
    """The reader is woken once its 10 bytes are there, not by each of the packets bringing them."""
    pipe = _ChunkPipe()
    pipe.feed(b"0123")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(pipe.read(10, timeout=10)))
    reader.start()
    deadline = time.monotonic() + 2
    while pipe._wanted != 10 and time.monotonic() < deadline:  # until the reader waits
        time.sleep(0.001)
    for packet in (b"4567", b"89ab"):
        pipe.feed(packet)
        time.sleep(0.02)  # time enough for a reader woken too early to take a part
    reader.join(timeout=10)
    assert got == [b"0123456789"]
    assert pipe.read(10, timeout=0) == b"ab"


def test_chunk_pipe_packets_short_of_what_the_reader_waits_for_do_not_wake_it(monkeypatch):
    pipe = _ChunkPipe()
    wakes: list[int] = []
    monkeypatch.setattr(pipe._cv, "notify_all", lambda: wakes.append(len(pipe._buffer)))  # under the lock
    pipe._wanted = 10  # as while a reader waits for 10 bytes
    for packet in (b"0123", b"4567", b"89ab"):
        pipe.feed(packet)
    assert wakes == [12]


def test_chunk_pipe_gives_what_is_there_when_the_time_is_up_and_times_out_on_nothing():
    pipe = _ChunkPipe()
    pipe.feed(b"abc")
    assert pipe.read(10, timeout=0.05) == b"abc"  # a slow link still makes progress
    with pytest.raises(PipeTimeout):
        pipe.read(10, timeout=0.05)


class EmptyDataServer(FakeServer):
    """Answers every read with a DATA message that holds nothing, not even the data's length."""

    def _answer(self, number: int, offset: int, size: int) -> bytes:
        assert self.sends < 100, "the client keeps asking"
        return _message(CMD_DATA, number, b"")


def test_an_answer_with_no_data_ends_the_copy(settings):
    """Nothing received is the end of the file, as an empty DATA answer was when answers were
    one string; the caller then refuses the file for its size (``_check_unchanged``)."""
    sha256, landed, written = copy(settings, EmptyDataServer(b"x" * (3 * R)), 3 * R)
    assert (sha256, landed, written) == (hashlib.sha256(b"").hexdigest(), 0, b"")


class GarbledServer(FakeServer):
    """Answers every read with a message whose lengths cannot be right."""

    def __init__(self, header: bytes) -> None:
        super().__init__(b"x" * 1000)
        self.header = header

    def _answer(self, number: int, offset: int, size: int) -> bytes:
        return self.header + b"\0" * 64


@pytest.mark.parametrize("header", [
    struct.pack(">IBI", 3, CMD_DATA, FIRST_NUMBER),  # shorter than its own type and number
    struct.pack(">IBI", 1 << 24, CMD_DATA, FIRST_NUMBER),  # more than any SFTP server sends
    struct.pack(">IBII", 5 + 4 + 10, CMD_DATA, FIRST_NUMBER, 11),  # data longer than its message
], ids=["too short", "too long", "data overruns"])
def test_a_garbled_answer_is_refused_not_read_past(settings, header):
    with pytest.raises(paramiko.SFTPError, match="malformed"):
        copy(settings, GarbledServer(header), 1000)
