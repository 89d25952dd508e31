"""Arrow's memory pool in a process that works on files (issue 13, eighth pass).

pyarrow's default pool on the hub is mimalloc, which made a third of a file's CPU time kernel
time; a process that processes a file allocates from jemalloc (else the system's malloc), unless
the operator named a pool in ``ARROW_DEFAULT_MEMORY_POOL``. Each case runs in a fresh
interpreter, since the pool is process-wide and Arrow reads the variable once.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
POOLS = {"jemalloc", "system"}


def _run(code: str, pool: str | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if pool:
        env["ARROW_DEFAULT_MEMORY_POOL"] = pool
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def test_the_hub_pool_replaces_mimalloc_and_is_allocated_from():
    before, chosen, now, used = _run("""
        import pyarrow as pa
        from samverkan.core.arrowops import use_hub_memory_pool
        before = pa.default_memory_pool().backend_name
        chosen = use_hub_memory_pool()
        values = pa.array(range(200_000))
        print(before, chosen, pa.default_memory_pool().backend_name, pa.default_memory_pool().bytes_allocated() > 0)
    """)
    assert chosen == now and now in POOLS and used == "True"
    assert before == "mimalloc" or before in POOLS  # what pyarrow picks by itself depends on its build


@pytest.mark.parametrize("pool", ["mimalloc", "system"])
def test_a_pool_the_operator_named_is_kept(pool):
    assert _run("""
        import pyarrow as pa
        from samverkan.core.arrowops import use_hub_memory_pool
        print(use_hub_memory_pool(), pa.default_memory_pool().backend_name)
    """, pool) == [pool, pool]


def test_processing_a_file_allocates_from_the_hub_pool(tmp_path):
    """The real pipeline on a small police night: after it, Arrow's default pool is the hub's."""
    before, after, status = _run(f"""
        import hashlib, shutil
        from datetime import date
        from pathlib import Path
        import pyarrow as pa
        from devkit.synthetic import Population, write_night
        from samverkan.core.contracts import load_contracts
        from samverkan.core.ledger import Ledger
        from samverkan.core.settings import Paths
        from samverkan.ingest.pipeline import process
        from samverkan.privacy.pseudonymise import Pseudonymiser
        from samverkan.quality.validation import EXPECTATIONS_DIR, Validator

        night, root = date(2026, 3, 2), Path({str(tmp_path)!r})
        truth = write_night("police", night, root / "in", rows=50, population=Population(seed=3, size=20), seed=5)
        paths = Paths(root / "data").ensure()
        ledger = Ledger(paths.ledger)
        target = paths.landing("police", night.isoformat()) / truth.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(truth.path, target)
        sha = hashlib.sha256(target.read_bytes()).hexdigest()
        landed = {{"entry_id": ledger.record_landed("police", target.name, night.isoformat(), 1, 0, sha, "t"),
                   "name": target.name, "night": night.isoformat(), "path": str(target), "sha256": sha,
                   "action": "process"}}
        before = pa.default_memory_pool().backend_name
        result = process(load_contracts()["police"], landed, paths, ledger, Pseudonymiser(bytes(range(32))),
                         Validator(), run_id="t", expectations_dir=EXPECTATIONS_DIR)
        print(before, pa.default_memory_pool().backend_name, result.status)
    """)
    assert status == "published" and after in POOLS
    assert before not in POOLS or before == after  # it was pyarrow's own default until the file came
