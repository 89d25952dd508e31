"""Published-shaped Parquet with a known rate and a known measure effect (lägesbild tests, benchmark).

Running months through the real pipeline takes long; the report only reads the published
datasets, so the lägesbild's unit tests and its benchmark write them directly, in the pipeline's
own schemas, from a seeded generator: Poisson incidents per night, source and area; a measure's
areas keep each incident with probability ``keep`` from its start. People are random hex
pseudonyms (synthetic, keyed to nothing). The leak test runs the real pipeline instead
(tests/integration/test_lagesbild_report.py).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from samverkan.ingest.model import INCIDENTS_SCHEMA, INVOLVEMENTS_SCHEMA

CENTRES = {
    "gustav_iii_torg": (7004450, 483880),
    "resecentrum": (7004020, 483600),
    "stortorget": (7004560, 483950),
    "prastgatan": (7004660, 484030),
    "storsjostrand": (7005215, 483410),
}
CATEGORIES = ("violence", "threat", "theft", "vandalism", "disorder", "intoxication", "other")
ROLES = ("suspect", "victim", "witness", "detained")
BANDS = ("0-14", "15-17", "18-24", "25-34", "35-44", "45-64", "65+")
HOURS = (6, 5, 5, 3, 2, 1, 1, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 6, 6, 7, 8, 9, 9, 8)


def write_published(
    root: Path,
    first_night: date,
    nights: int,
    *,
    rate: dict[str, float] | float = 1.5,
    effects: dict[str, tuple[date, float]] | None = None,
    seed: int = 1,
    sources: tuple[str, ...] = ("police", "transit", "guards"),
    people: int = 400,
) -> Path:
    """``rate``: incidents per night, source and area (a mapping per area, or one for all);
    ``effects``: area → (start, keep). Returns the published root."""
    published = root / "published"
    pool = [random.Random(seed * 7919 + i).getrandbits(128).to_bytes(16, "big").hex() for i in range(people)]
    effects = effects or {}
    for d in range(nights):
        night = first_night + timedelta(days=d)
        for source in sources:
            rng = np.random.default_rng([seed, d, sources.index(source)])
            incidents, involvements = [], []
            for area, (north, east) in CENTRES.items():
                lam = rate[area] if isinstance(rate, dict) else rate
                for k in range(int(rng.poisson(lam))):
                    start, keep = effects.get(area, (None, 1.0))
                    if start is not None and night >= start and rng.random() >= keep:
                        continue
                    hour = int(rng.choice(24, p=np.array(HOURS) / sum(HOURS)))
                    at = datetime.combine(night, datetime.min.time()) + timedelta(
                        hours=hour, minutes=int(rng.integers(60))
                    )
                    iid = f"{source}:{night:%Y%m%d}-{area}-{k}"
                    coord = source == "police" and rng.random() < 0.9
                    incidents.append(
                        {
                            "incident_id": iid,
                            "source": source,
                            "source_file": f"{source}-{night}.csv",
                            "occurred_at_local": at,
                            "place": area,
                            "area": area,
                            "coord_n": int(round((north + rng.integers(-60, 60)) / 100) * 100) if coord else None,
                            "coord_e": int(round((east + rng.integers(-60, 60)) / 100) * 100) if coord else None,
                            "category": CATEGORIES[int(rng.integers(len(CATEGORIES)))],
                        }
                    )
                    for _ in range(int(rng.integers(0, 3))):
                        involvements.append(
                            {
                                "incident_id": iid,
                                "source": source,
                                "person_pseudonym": pool[int(rng.zipf(1.6)) % people],
                                "role": ROLES[int(rng.integers(len(ROLES)))],
                                "age_band": BANDS[int(rng.integers(len(BANDS)))],
                            }
                        )
            _write(published, "incidents", night, source, incidents, INCIDENTS_SCHEMA)
            _write(published, "involvements", night, source, involvements, INVOLVEMENTS_SCHEMA)
    return published


def _write(published: Path, dataset: str, night: date, source: str, rows: list[dict], schema: pa.Schema) -> None:
    folder = published / dataset / f"night={night.isoformat()}" / f"source={source}"
    folder.mkdir(parents=True, exist_ok=True)
    full = [{name: r.get(name) for name in schema.names} for r in rows]
    pq.write_table(pa.Table.from_pylist(full, schema=schema), folder / "part-0.parquet")
