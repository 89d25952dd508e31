"""Reading the project's YAML configuration (contracts, agreements) with errors that name the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

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


T = TypeVar("T")
_REQUIRED: Any = object()


class RawField(Generic[T]):
    """A read-only attribute that is one value of the loaded YAML (``obj.raw``), found by its path.

    ``cron = RawField[str]("schedule", "cron")`` reads ``raw["schedule"]["cron"]``; with a
    ``default`` a missing key on the way gives the default. The schema checked on load guarantees
    the required paths, so a class lists what it reads from its file as data, not as code."""

    def __init__(self, *path: str, default: Any = _REQUIRED) -> None:
        self.path, self.default = path, default

    @overload
    def __get__(self, obj: None, owner: type) -> RawField[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        value = obj.raw
        for key in self.path:
            if self.default is not _REQUIRED and key not in value:
                return self.default
            value = value[key]
        return value


@dataclass(frozen=True)
class ConfigFile:
    """A configuration file (contract, agreement) as loaded and checked: ``raw`` keeps the YAML,
    read through ``RawField`` attributes of the subclass."""

    id: str
    version: int
    path: Path
    raw: dict[str, Any] = field(repr=False)
