"""Resilience, faults: a real sshd stopped mid-transfer or down, a changed host key, a publish
process killed mid-write, a disk that fills during publish.

Everything here is the real thing: OpenSSH's sshd (killed with its session processes), the
project's connector, the pipeline in a child process killed with SIGKILL, and a tmpfs of a
few MiB mounted for the hub's data root (root only; skipped otherwise).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from samverkan.connectors.sftp import HostKeyError, SFTPConnectionError, SFTPConnector
from samverkan.core.contracts import load_contracts
from samverkan.connectors.sshd import start_sftp_server
from samverkan.core.ledger import Ledger
from samverkan.ingest.pipeline import discover, fetch
from samverkan.core.publishing import partition_file
from samverkan.core.settings import Paths
from samverkan.quality.validation import Validator
from tests.integration.resilience_support import NIGHT, POLICE_HEADER, Hub, assert_balanced, generated, police_row

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIG = 96 << 20


def descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def kill_server(server) -> None:
    """Stop sshd the hard way: its session processes too, as when the machine goes away."""
    for pid in descendants(server.process.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.process.kill()
    server.stop()


def restart(server, client_key):
    """The same server back: same root, port and host key (its workdir keeps the key)."""
    return start_sftp_server(server.root, client_key[1], server.workdir, port=server.port)


@pytest.fixture
def big_file(sftp_server):
    path = sftp_server.root / "outbound" / "big.bin"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        seed = os.urandom(1 << 20)
        for i in range(BIG >> 20):
            f.write(seed[i:] + seed[:i])
    return path


def test_server_stopped_mid_transfer_then_next_try_is_byte_identical(sftp_server, settings_for, big_file,
                                                                    client_key, tmp_path):
    landing = tmp_path / "landing"
    target = landing / "big.bin"
    stopped = threading.Event()

    def stop_when_half_way():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            parts = list(landing.glob(".big.bin.*.part")) if landing.exists() else []
            if parts and parts[0].exists() and parts[0].stat().st_size >= (8 << 20):
                kill_server(sftp_server)
                stopped.set()
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=stop_when_half_way)
    watcher.start()
    settings = settings_for(sftp_server)
    with pytest.raises(SFTPConnectionError, match="connection lost while fetching /outbound/big.bin.*nothing landed"):
        with SFTPConnector(settings) as sftp:
            sftp.download("/outbound/big.bin", target)
    watcher.join()
    assert stopped.is_set()  # it really was stopped part-way, not before or after
    assert list(landing.iterdir()) == []  # no target, no .part

    with pytest.raises(SFTPConnectionError, match="connection refused"):  # still down: a clear failure
        SFTPConnector(settings).connect()

    again = restart(sftp_server, client_key)
    try:
        with SFTPConnector(settings) as sftp:
            download = sftp.download("/outbound/big.bin", target)
    finally:
        again.stop()
    expected = hashlib.sha256(big_file.read_bytes()).hexdigest()
    assert download.sha256 == expected == hashlib.sha256(target.read_bytes()).hexdigest()
    assert download.size == BIG and [p.name for p in landing.iterdir()] == ["big.bin"]


def test_server_down_retries_then_clear_failure(sftp_server, settings_for, client_key, tmp_path):
    """Each try fails fast with the same clear reason; Airflow retries the task (3 times, with
    back-off) and alerts after the last; the try after the server is back succeeds."""
    from samverkan.orchestration.feed_dags import DEFAULT_ARGS

    assert DEFAULT_ARGS["retries"] >= 1 and DEFAULT_ARGS["on_failure_callback"] is not None
    settings = settings_for(sftp_server)
    kill_server(sftp_server)
    contract = load_contracts()["police"]
    paths = Paths(tmp_path / "data").ensure()
    ledger = Ledger(paths.ledger)
    for attempt in range(1 + DEFAULT_ARGS["retries"]):
        started = time.monotonic()
        with pytest.raises(SFTPConnectionError) as failure:
            with SFTPConnector(settings) as sftp:
                discover(contract, sftp, ledger, NIGHT)
        assert time.monotonic() - started < 10
        assert str(failure.value) == f"{settings.address}: connection refused"
    put_police_night(sftp_server.root)
    again = restart(sftp_server, client_key)
    try:
        with SFTPConnector(settings) as sftp:
            found = discover(contract, sftp, ledger, NIGHT)
    finally:
        again.stop()
    assert [f["name"] for f in found] == ["polisen_handelser_20261120.csv"]


def put_police_night(root: Path, night: date = NIGHT) -> Path:
    directory = root / "outbound" / "trygghet"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"polisen_handelser_{night:%Y%m%d}.csv"
    path.write_bytes(("\r\n".join([POLICE_HEADER] + [police_row(i) for i in range(20)]) + "\r\n").encode("cp1252"))
    (directory / f"{path.name}.ok").touch()
    return path


def test_changed_host_key_is_refused_and_nothing_is_fetched(start_server, settings_for, tmp_path):
    first = start_server()
    put_police_night(first.root)
    settings = settings_for(first)  # pinned: the first key
    port, root = first.port, first.root
    first.stop()
    impostor = start_server(root, port=port)  # same address and files, a new host key
    assert impostor.host_key_line != settings.host_key
    paths = Paths(tmp_path / "data").ensure()
    with pytest.raises(HostKeyError, match="host key mismatch, refusing to connect"):
        with SFTPConnector(settings) as sftp:
            discover(load_contracts()["police"], sftp, Ledger(paths.ledger), NIGHT)
    assert not any(paths.private.rglob("*.csv"))


def test_path_tricks_on_the_server_are_not_fetched(sftp_server, settings_for, tmp_path):
    """Only regular files whose whole name matches the contract are taken: no symlink out of
    the partner's directory, no directory, no name with a path or control character in it."""
    good = put_police_night(sftp_server.root)
    directory = good.parent
    outside = sftp_server.root / "secret.csv"
    outside.write_text("not for the hub")
    (directory / "polisen_handelser_20261119.csv").symlink_to("../../secret.csv")
    (directory / "polisen_handelser_20261119.csv.ok").touch()
    (directory / "polisen_handelser_20261118.csv").mkdir()
    (directory / "polisen_handelser_20261118.csv.ok").touch()
    for name in ("polisen_handelser_20261120.csv\n", "..polisen_handelser_20261120.csv", "x\\..\\polisen_handelser_20261120.csv",
                 ".polisen_handelser_20261120.csv", "polisen_handelser_20261120.csv ", "polisen_handelser_2026112O.csv"):
        (directory / name).write_bytes(b"x")
        (directory / f"{name}.ok").touch()
    paths = Paths(tmp_path / "data").ensure()
    ledger = Ledger(paths.ledger)
    contract = load_contracts()["police"]
    with SFTPConnector(settings_for(sftp_server)) as sftp:
        found = discover(contract, sftp, ledger, NIGHT)
        assert [f["name"] for f in found] == [good.name]
        landed = fetch(contract, sftp, ledger, paths, found[0], "resilience")
    assert Path(landed["path"]).resolve().is_relative_to(paths.landing("police", NIGHT.isoformat()).resolve())
    assert Path(landed["path"]).read_bytes() == good.read_bytes()


# --- publishing -----------------------------------------------------------------------------

CHILD = """
import json, sys
from pathlib import Path
from samverkan.core.contracts import load_contracts
from samverkan.core.ledger import Ledger
from samverkan.ingest.pipeline import process
from samverkan.privacy.pseudonymise import Pseudonymiser
from samverkan.core.settings import Paths
from samverkan.quality.validation import Validator, EXPECTATIONS_DIR
landed = json.loads(sys.argv[2])
paths = Paths(Path(sys.argv[1])).ensure()
print("start", flush=True)
result = process(load_contracts()["police"], landed, paths, Ledger(paths.ledger), Pseudonymiser(bytes(range(32))),
                 Validator(), run_id="child", expectations_dir=EXPECTATIONS_DIR, batch_rows=int(sys.argv[3]))
print(json.dumps({"status": result.status, "published": result.rows_published}), flush=True)
"""


def run_child(hub: Hub, landed: dict, batch_rows: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(hub.paths.root), json.dumps(landed), str(batch_rows)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def published_files(hub: Hub) -> dict[str, bytes]:
    return {str(p.relative_to(hub.paths.published)): p.read_bytes() for p in sorted(hub.paths.published.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def validator():
    return Validator()


def test_publish_killed_mid_write_leaves_no_half_partition_and_rerun_completes(tmp_path, validator):
    hub = Hub.create(tmp_path / "hub", validator)
    first = generated(tmp_path / "v1", "police", 300, seed=1)
    earlier = hub.process("police", first)  # the partition as it was before the corrected file
    assert earlier.status == "published"
    before = published_files(hub)
    assert any(name.startswith("incidents/") for name in before)

    corrected = generated(tmp_path / "v2", "police", 6_000, seed=2)  # same name, new content
    landed = hub.land("police", corrected)
    child = run_child(hub, landed, batch_rows=500)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        parts = [p for p in hub.paths.staging.glob("*.parquet.part") if p.stat().st_size > 1_000]
        if len(parts) >= 1:
            time.sleep(0.2)  # several batches in: well inside the write
            break
        time.sleep(0.01)
    assert child.poll() is None, child.communicate()
    child.send_signal(signal.SIGKILL)
    child.wait()

    assert published_files(hub) == before  # readers still see exactly the earlier version
    assert list(hub.paths.staging.glob("*.parquet.part"))  # what was being written stayed in staging

    rerun = run_child(hub, landed, batch_rows=100_000)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary == {"status": "published", "published": 6_000}
    incidents = partition_file(hub.paths.dataset("incidents"), NIGHT.isoformat(), "police", corrected.name)
    assert pq.ParquetFile(incidents).schema_arrow.metadata[b"samverkan.source_sha256"].decode() == landed["sha256"]
    involvements = partition_file(hub.paths.dataset("involvements"), NIGHT.isoformat(), "police", corrected.name)
    assert pq.ParquetFile(involvements).metadata.num_rows > 0


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs for the hub's data root: staging and published share it, as in production."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited filesystem needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_during_publish_keeps_the_previous_partition(small_disk, tmp_path, validator):
    hub = Hub.create(small_disk / "data", validator)
    first = generated(tmp_path / "v1", "police", 200, seed=1)
    earlier = hub.process("police", first)
    assert earlier.status == "published"
    before = published_files(hub)

    corrected = generated(tmp_path / "v2", "police", 20_000, seed=3)  # about 250 kB of Parquet
    landed = _land_outside(hub, corrected, tmp_path)
    stats = os.statvfs(small_disk)
    filler = small_disk / "filler"  # what else lives on the disk: 100 kB left for publishing
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - 100_000))
    from samverkan.ingest.pipeline import process
    from samverkan.quality.validation import EXPECTATIONS_DIR

    with pytest.raises(OSError) as full:
        process(load_contracts()["police"], landed, hub.paths, hub.ledger, hub.pseudonymiser, validator,
                run_id="disk-full", expectations_dir=EXPECTATIONS_DIR, batch_rows=5_000)
    assert "No space left on device" in str(full.value) or getattr(full.value, "errno", None) == 28
    assert published_files(hub) == before  # the earlier partition, byte for byte
    assert list(hub.paths.staging.glob("*.part")) == []  # the aborted files were removed, space is back
    filler.unlink()
    result = process(load_contracts()["police"], landed, hub.paths, hub.ledger, hub.pseudonymiser, validator,
                     run_id="disk-freed", expectations_dir=EXPECTATIONS_DIR, batch_rows=5_000)
    assert result.status == "published" and result.rows_published == 20_000  # with space again, it completes
    for path in before:
        if path.endswith(".parquet"):
            pq.read_table(hub.paths.published / path)  # still readable


def _land_outside(hub: Hub, source: Path, tmp_path: Path) -> dict:
    """The landed copy of a file too big for the small disk lives elsewhere; only publishing is tested."""
    data = source.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    entry = hub.ledger.record_landed("police", source.name, NIGHT.isoformat(), len(data), 0, sha, "disk-full")
    return {"entry_id": entry, "name": source.name, "night": NIGHT.isoformat(), "path": str(source), "sha256": sha,
            "size": len(data), "action": "process"}


def test_balance_holds_after_a_rerun(tmp_path, validator):
    hub = Hub.create(tmp_path / "hub", validator)
    source = generated(tmp_path / "v", "guards", 500, seed=4)
    for _ in range(2):
        result = hub.process("guards", source)
        assert result.status == "published"
        assert_balanced(result, hub)
