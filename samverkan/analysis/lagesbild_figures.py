"""The lägesbild's figures (matplotlib, Agg): every count drawn comes from a protected table, and a
withheld count is drawn hatched and labelled, never as a 0 or a gap that reads as one."""

from __future__ import annotations

import io
from typing import Any, Callable, Sequence

import numpy as np

from samverkan.analysis.disclosure import CountTable

HATCH = "////"
SUPPRESSED_TEXT = "undertryckt"
DPI = 110


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return buffer.getvalue()


def _values(t: CountTable, row: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A row (None: the totals row) of cells: values (nan where withheld) and the withheld mask."""
    i = len(t.rows) if row is None else row
    hidden = t.suppressed[i, :-1]
    values = np.where(hidden, np.nan, t.extended[i, :-1].astype(float))
    return values, hidden


def weekly(t: CountTable, current: int, title: str) -> bytes:
    """Incidents per week per source and all sources: this period solid, the previous dashed."""
    plt = _plt()
    labels = [*map(str, t.rows), "alla källor"]
    fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 2.8), sharey=False, squeeze=False)
    for k, label in enumerate(labels):
        ax = axes[0][k]
        values, hidden = _values(t, None if k == len(t.rows) else k)
        x = np.arange(1, current + 1)
        prev, now = values[:current], values[current:]
        ax.plot(x, prev, "--", color="#999999", label="föregående period")
        ax.plot(x, now, "-o", color="#1f5f8b", markersize=3, label="denna period")
        for j, h in enumerate(hidden[current:]):
            if h:
                ax.axvspan(j + 0.55, j + 1.45, facecolor="none", edgecolor="#c0392b", hatch=HATCH, linewidth=0)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("vecka i perioden", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("händelser", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{title} (randat = undertryckt)", fontsize=10)
    return png(fig)


def grid(t: CountTable, title: str, row_labels: Sequence[str], col_labels: Sequence[str], *,
         annotate: bool = True, overlay: Callable[[Any], None] | None = None, size=(9, 3.2),
         extent=None) -> bytes:
    """A heatmap of the table's cells with counts written in; withheld cells hatched."""
    plt = _plt()
    cells = t.cells.astype(float)
    hidden = t.suppressed[:-1, :-1]
    shown = np.ma.masked_array(cells, mask=hidden)
    fig, ax = plt.subplots(figsize=size)
    image = ax.imshow(shown, cmap="Blues", aspect="auto", extent=extent, interpolation="nearest",
                      vmin=0, vmax=max(1.0, float(np.nanmax(np.where(hidden, 0, cells))) if cells.size else 1.0))
    n_rows, n_cols = cells.shape
    for i in range(n_rows):
        for j in range(n_cols):
            x, y = _centre(i, j, n_rows, n_cols, extent)
            if hidden[i, j]:
                w, h = _cell_size(n_rows, n_cols, extent)
                ax.add_patch(plt.Rectangle((x - w / 2, y - h / 2), w, h, facecolor="#eeeeee", edgecolor="#c0392b",
                                           hatch=HATCH, linewidth=0))
            elif annotate and cells[i, j] > 0:
                ax.text(x, y, f"{int(cells[i, j])}", ha="center", va="center", fontsize=6,
                        color="white" if cells[i, j] > 0.6 * image.norm.vmax else "black")
    if extent is None:
        ax.set_xticks(range(n_cols), col_labels, fontsize=7, rotation=90 if n_cols > 12 else 0)
        ax.set_yticks(range(n_rows), row_labels, fontsize=7)
    if overlay:
        overlay(ax)
    fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
    ax.set_title(f"{title} (randat = undertryckt)", fontsize=10)
    return png(fig)


def _cell_size(n_rows: int, n_cols: int, extent) -> tuple[float, float]:
    if extent is None:
        return 1.0, 1.0
    left, right, bottom, top = extent
    return (right - left) / n_cols, (top - bottom) / n_rows


def _centre(i: int, j: int, n_rows: int, n_cols: int, extent) -> tuple[float, float]:
    if extent is None:
        return float(j), float(i)
    w, h = _cell_size(n_rows, n_cols, extent)
    left, _, _, top = extent
    return left + (j + 0.5) * w, top - (i + 0.5) * h


def cell_map(t: CountTable, outlines: dict[str, list[list[float]]], title: str) -> bytes:
    """100 m cells (rows: northings, top first; columns: eastings) with the areas' outlines."""
    rows, cols = [int(r) for r in t.rows], [int(c) for c in t.cols]
    extent = (cols[0] - 50, cols[-1] + 50, rows[-1] - 50, rows[0] + 50) if rows and cols else None

    def outline(ax) -> None:
        plt = _plt()
        for area, corners in outlines.items():
            xy = [(e, n) for n, e in corners]
            ax.add_patch(plt.Polygon(xy, closed=True, fill=False, edgecolor="#d35400", linewidth=1.5))
            ax.annotate(area, xy=np.mean(xy, axis=0), fontsize=7, color="#d35400", ha="center")
        ax.set_xlabel("SWEREF 99 TM öst (m)", fontsize=8)
        ax.set_ylabel("nord (m)", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.set_aspect("equal")

    return grid(t, title, [], [], overlay=outline, size=(7, 7), extent=extent)


def measure(t: CountTable, n_before: int, title: str) -> bytes:
    """Incidents per week in the measure's areas and in the comparison areas; the start marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3))
    x = np.arange(len(t.cols)) - n_before
    for k, (label, colour) in enumerate(zip(t.rows, ("#c0392b", "#7f8c8d"))):
        values, hidden = _values(t, k)
        ax.plot(x, values, "-o", markersize=3, color=colour, label=str(label))
        for j in np.flatnonzero(hidden):
            ax.axvspan(x[j] - 0.45, x[j] + 0.45, facecolor="none", edgecolor=colour, hatch=HATCH, linewidth=0)
    ax.axvline(-0.5, color="black", linestyle=":", label="åtgärden börjar")
    ax.set_xlabel("veckor från start", fontsize=8)
    ax.set_ylabel("händelser per vecka", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.set_title(f"{title} (randat = undertryckt)", fontsize=10)
    return png(fig)
