"""Small helpers for parametrized text cases."""

from __future__ import annotations

import pytest


def unchanged(text: str, why: str):
    """A case whose text must come back as it went in (``why`` is the test id)."""
    return pytest.param(text, text, id=why)
