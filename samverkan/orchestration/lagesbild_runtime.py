"""What the lägesbild task does, Airflow-free: build the report under the data root's reports."""

from __future__ import annotations

import logging
from typing import Any

from samverkan.analysis.lagesbild import build_report, report_dir
from samverkan.core.settings import paths

log = logging.getLogger(__name__)


def build() -> dict[str, Any]:
    p = paths().ensure()
    result = build_report(p.published, report_dir(p))
    summary = {"release": result.release, "html": str(result.html), "figures": len(result.figures)}
    log.info("lägesbild %s written to %s (%d figures)", result.release, result.directory, len(result.figures))
    return summary
