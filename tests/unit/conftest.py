"""Fixtures shared by the unit tests: the loaded contracts and one GE validator (slow to build)."""

import pytest

from samverkan.contracts import load_contracts


@pytest.fixture(scope="module")
def contracts():
    return load_contracts()


@pytest.fixture(scope="module")
def validator():
    from samverkan.validation import Validator

    return Validator()
