"""In CI a skip is a failure, unless its reason is one the environment may legitimately give.

A test that skips when sshd, Chromium, PostgreSQL or root is missing passes silently on a
machine where scripts/setup did not run or failed, so a green CI run would say nothing about
it. CI (``CI=true``, as .ci/run and every hosted runner set) runs as root after scripts/setup:
there, every precondition of a skip is present, and a skip means something broke. The
allow-list holds the reasons scripts/setup cannot remove.
"""

from __future__ import annotations

import os
import re

import pytest

# (reason pattern, why it may happen in CI)
ALLOWED_IN_CI = [
    (r"cannot mount tmpfs here", "a container without CAP_SYS_ADMIN; no package gives it"),
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


def allowed(reason: str) -> bool:
    return any(re.search(pattern, reason) for pattern, _ in ALLOWED_IN_CI)


def fail_skip_in_ci(report: pytest.TestReport) -> None:
    """Turn the report of a skipped test into a failure that quotes the skip's reason."""
    if not report.skipped or hasattr(report, "wasxfail") or not in_ci():
        return
    reason = skip_reason(report)
    if allowed(reason):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped in CI ({reason}); scripts/setup installs what this test needs, so a skip "
                       f"here means it is broken (allow-list: tests/support/skips.py)")
