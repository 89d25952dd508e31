"""The pull service's copies of the outboxes (the compose stack serves these, not the outboxes the
workers write): root-owned and read-only, a delivery appears and is replaced whole, what
retention removed goes, hidden staging is never served, other recipients are not touched."""

from __future__ import annotations

import os
import stat

import pytest

from samverkan.sharing.pull_service import mirror

pytestmark = pytest.mark.unit

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the copies are given to root, as sshd's chroot needs")


def _deliver(outbox, recipient: str, night: str, manifest: str = "{}") -> None:
    night_dir = outbox / recipient / night
    night_dir.mkdir(parents=True, exist_ok=True)
    (night_dir / "incidents.parquet").write_bytes(b"PAR1" + night.encode())
    (night_dir / "manifest.json").write_text(manifest)
    for path in (night_dir, *night_dir.iterdir()):  # as the workers leave them: theirs, group-writable
        os.chown(path, 50000, 0)
        path.chmod(0o775 if path.is_dir() else 0o664)


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@needs_root
def test_copies_are_the_outbox_root_owned_and_read_only(tmp_path):
    outbox, copies = tmp_path / "outbox", tmp_path / "pull"
    _deliver(outbox, "municipality", "2026-11-20")
    (outbox / "municipality" / ".staging-x").mkdir()
    assert mirror(outbox, copies, ["municipality"]) == {"municipality": 1}
    assert _files(copies / "municipality") == _files(outbox / "municipality")
    for path in [copies / "municipality", *(copies / "municipality").rglob("*")]:
        st = path.stat()
        assert st.st_uid == 0 and not st.st_mode & 0o022, path
        assert stat.S_IMODE(st.st_mode) == (0o755 if path.is_dir() else 0o644), path
    assert mirror(outbox, copies, ["municipality"]) == {"municipality": 0}  # nothing changed, nothing copied


@needs_root
def test_a_rebuilt_delivery_is_replaced_and_a_removed_one_goes(tmp_path):
    outbox, copies = tmp_path / "outbox", tmp_path / "pull"
    _deliver(outbox, "guards", "2026-11-20", '{"v": 1}')
    _deliver(outbox, "guards", "2026-11-21")
    mirror(outbox, copies, ["guards"])
    _deliver(outbox, "guards", "2026-11-20", '{"v": 2, "rebuilt": true}')
    for f in (outbox / "guards" / "2026-11-21").iterdir():
        f.unlink()
    (outbox / "guards" / "2026-11-21").rmdir()
    assert mirror(outbox, copies, ["guards"]) == {"guards": 2}
    assert (copies / "guards" / "2026-11-20" / "manifest.json").read_text() == '{"v": 2, "rebuilt": true}'
    assert sorted(p.name for p in (copies / "guards").iterdir()) == ["2026-11-20"]


@needs_root
def test_each_recipient_gets_only_its_own_outbox_and_staging_is_never_inside_one(tmp_path):
    outbox, copies = tmp_path / "outbox", tmp_path / "pull"
    _deliver(outbox, "municipality", "2026-11-20")
    _deliver(outbox, "guards", "2026-11-21")
    mirror(outbox, copies, ["guards"])
    assert sorted(p.name for p in copies.iterdir() if not p.name.startswith(".")) == ["guards"]
    assert sorted(p.name for p in (copies / "guards").iterdir()) == ["2026-11-21"]
    mirror(outbox, copies, ["municipality", "guards"])
    assert list((copies / ".incoming").iterdir()) == []  # copies are made aside, then renamed in
    assert not (copies / "municipality" / ".incoming").exists()
