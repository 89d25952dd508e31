"""The dataset documentation in schemas/common_model.yaml is what analysts and agreements rely on:
it must name exactly the columns the pipeline publishes."""

import pytest

from samverkan.core.contracts import common_model
from samverkan.ingest.model import INCIDENTS_SCHEMA, INVOLVEMENTS_SCHEMA

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("dataset, schema", [("incidents", INCIDENTS_SCHEMA), ("involvements", INVOLVEMENTS_SCHEMA)])
def test_documented_columns_are_the_published_columns(dataset, schema):
    documented = list(common_model()["datasets"][dataset]["columns"])
    assert documented == schema.names
