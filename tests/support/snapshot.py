"""A copy of a hub's state at one moment, so tests of that moment do not depend on test order.

The end-to-end modules build one expensive world (a night through the real DAGs) and then change
it in later steps (a resent file, a re-processing, an erasure). Tests that check the world *before*
such a step read a frozen copy taken right after it was built; the steps themselves are
module-scoped fixtures that the tests checking their outcome request. So every test sees the
same state whatever order pytest runs them in (`--random-order`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from samverkan.core.settings import Paths


def freeze(paths: Paths, into: Path) -> Paths:
    """Copy the whole data root (published, private, reports, outbox, register) to `into`."""
    shutil.copytree(paths.root, into, symlinks=True)
    return Paths(into)


def freeze_dir(folder: Path, into: Path) -> Path:
    """Copy one folder (e.g. a partner's receipts) to `into`; an absent folder stays absent."""
    if folder.exists():
        shutil.copytree(folder, into, symlinks=True)
    return into
