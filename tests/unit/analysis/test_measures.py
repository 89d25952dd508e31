"""The measures register: the shipped measures load, and a broken file is refused naming file and field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from samverkan.analysis.measures import MEASURES_DIR, MeasureError, load_measure, load_measures

pytestmark = pytest.mark.unit

GOOD = """measure: {id}
title: Ny belysning
kind: lighting
areas: [gustav_iii_torg]
start: 2026-10-12
end: null
owner: Östersunds kommun
"""


def test_the_shipped_register_loads_with_the_bus_square_measure():
    measures = {m.id: m for m in load_measures()}
    lighting = measures["gustav_iii_torg_lighting"]
    assert lighting.areas == ("gustav_iii_torg",) and lighting.start == date(2026, 10, 12) and lighting.end is None
    assert lighting.active_on(date(2026, 11, 1)) and not lighting.active_on(date(2026, 10, 11))
    assert all(m.path.parent == MEASURES_DIR for m in measures.values())


def _write(tmp_path: Path, text: str, name: str = "m1") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads(tmp_path):
    m = load_measure(_write(tmp_path, GOOD.format(id="m1")))
    assert (m.id, m.kind, m.start) == ("m1", "lighting", date(2026, 10, 12))


@pytest.mark.parametrize("change, field", [
    (("areas: [gustav_iii_torg]", "areas: [mars]"), "areas.0: unknown area 'mars'"),
    (("start: 2026-10-12", "start: 12/10/2026"), "start:"),
    (("end: null", "end: 2026-01-01"), "end: 2026-01-01 is before start"),
    (("kind: lighting", "kind: magic"), "kind:"),
    (("owner: Östersunds kommun\n", ""), "(top level): 'owner' is a required property"),
    (("measure: m1", "measure: other"), "measure: id 'other' must match the file name"),
])
def test_a_broken_file_names_file_and_field(tmp_path, change, field):
    text = GOOD.format(id="m1").replace(*change)
    with pytest.raises(MeasureError) as caught:
        load_measure(_write(tmp_path, text))
    assert str(caught.value).startswith("m1.yaml: ") and field in str(caught.value)


def test_not_yaml_is_refused_naming_the_file(tmp_path):
    with pytest.raises(MeasureError, match="m1.yaml: not valid YAML"):
        load_measure(_write(tmp_path, "measure: [unclosed"))
