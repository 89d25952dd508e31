"""Reading the project's YAML configuration (contracts, agreements) with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def load_mapping(path: Path, error: type[Exception]) -> dict[str, Any]:
    """The file's top-level mapping; a syntax error or another top-level shape raises ``error``
    naming the file, so a broken configuration stops the loader with a message a person can act on."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path.name}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{path.name}: expected a mapping at the top level")
    return data
