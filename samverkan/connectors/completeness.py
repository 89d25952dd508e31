"""Which files in a partner's directory are finished uploads, under the feed contract's rule.

Fetching a file that is still being written lands half a night, which then looks like a
complete but short file. Each partner signals completion its own way (a marker beside the file,
a rename from a temporary name, or nothing but time), so the rule comes from the contract's
``file.completeness`` and is applied here to a plain directory listing: pure functions, so the
decisions are unit-tested without a server and the same listing always gives the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from samverkan.connectors.sftp import RemoteFile


@dataclass(frozen=True)
class Observation:
    """A file's size and mtime, and when we first saw it with exactly those."""

    size: int
    mtime: int
    first_seen: float


@dataclass(frozen=True)
class Selection:
    complete: list[RemoteFile]
    pending: list[tuple[RemoteFile, str]]  # with the reason, in plain words, for the log


def observe(listing: Iterable[RemoteFile], previous: Mapping[str, Observation], now: float) -> dict[str, Observation]:
    """The observations to keep after this listing.

    An unchanged file keeps its first sighting; a new size or mtime starts the clock again.
    Files no longer listed are dropped, so one that disappears and comes back starts over.
    """
    updated = {}
    for f in listing:
        seen = previous.get(f.name)
        if seen is not None and (seen.size, seen.mtime) == (f.size, f.mtime):
            updated[f.name] = seen
        else:
            updated[f.name] = Observation(f.size, f.mtime, now)
    return updated


def select_complete(
    listing: Iterable[RemoteFile],
    rule: Mapping[str, Any],
    name_regex: re.Pattern[str],
    observations: Mapping[str, Observation] | None = None,
    now: float | None = None,
) -> Selection:
    """Split the feed's files in ``listing`` into complete and pending.

    Only names that fully match ``name_regex`` are the feed's files; marker files are not, and
    a rename rule's temporary names count only as pending uploads of a matching name.
    ``observations`` and ``now`` are needed for the quiet-period rule only.
    """
    files = sorted(listing, key=lambda f: f.name)
    kind = rule.get("rule")
    if kind == "marker":
        return _by_marker(files, rule["marker_suffix"], name_regex)
    if kind == "rename":
        return _by_rename(files, rule["temp_suffix"], name_regex)
    if kind == "quiet_period":
        if observations is None or now is None:
            raise ValueError("the quiet_period rule needs observations and now")
        return _by_quiet_period(files, float(rule["seconds"]), name_regex, observations, now)
    raise ValueError(f"unknown completeness rule {kind!r}")


def _matches(name_regex: re.Pattern[str], name: str) -> bool:
    return name_regex.fullmatch(name) is not None


def _by_marker(files: list[RemoteFile], suffix: str, name_regex: re.Pattern[str]) -> Selection:
    names = {f.name for f in files}
    complete, pending = [], []
    for f in files:
        if f.name.endswith(suffix) or not _matches(name_regex, f.name):
            continue
        if f.name + suffix in names:
            complete.append(f)
        else:
            pending.append((f, f"no {suffix} marker yet"))
    return Selection(complete, pending)


def _by_rename(files: list[RemoteFile], suffix: str, name_regex: re.Pattern[str]) -> Selection:
    complete, pending = [], []
    for f in files:
        if f.name.endswith(suffix):
            if _matches(name_regex, f.name) or _matches(name_regex, f.name[: -len(suffix)]):
                pending.append((f, f"still uploading ({suffix})"))
        elif _matches(name_regex, f.name):
            complete.append(f)
    return Selection(complete, pending)


def _by_quiet_period(
    files: list[RemoteFile],
    seconds: float,
    name_regex: re.Pattern[str],
    observations: Mapping[str, Observation],
    now: float,
) -> Selection:
    complete, pending = [], []
    for f in files:
        if not _matches(name_regex, f.name):
            continue
        seen = observations.get(f.name)
        if seen is None:
            pending.append((f, f"first seen just now; quiet period {seconds:g} s"))
        elif (seen.size, seen.mtime) != (f.size, f.mtime):
            pending.append((f, f"size/mtime changed just now; quiet period {seconds:g} s"))
        elif seen.first_seen <= now - seconds:
            complete.append(f)
        else:
            pending.append((f, f"size/mtime changed {now - seen.first_seen:.0f} s ago; quiet period {seconds:g} s"))
    return Selection(complete, pending)
