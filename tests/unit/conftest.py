"""Fixtures shared by the unit tests: the loaded contracts and one GE validator (slow to build)."""

import pytest

from samverkan.core.contracts import load_contracts


@pytest.fixture(scope="module")
def contracts():
    return load_contracts()


@pytest.fixture(scope="module")
def validator():
    from samverkan.quality.validation import Validator

    return Validator()
