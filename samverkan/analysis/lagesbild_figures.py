"""The lägesbild's figures (matplotlib, Agg): every count drawn comes from a protected table, and a
withheld count is drawn hatched and labelled, never as a 0 or a gap that reads as one."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from samverkan.analysis.disclosure import CountTable

SUPPRESSED_COLOUR = "#c0392b"
STRIPE = 6  # pixels per stripe period in a withheld cell
CELL_PIXELS = 24
DPI = 90


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    _plt().close(fig)
    return buffer.getvalue()


def _values(t: CountTable, row: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A row (None: the totals row) of cells: values (nan where withheld) and the withheld mask."""
    i = len(t.rows) if row is None else row
    hidden = t.suppressed[i, :-1]
    values = np.where(hidden, np.nan, t.extended[i, :-1].astype(float))
    return values, hidden


NO_DATA_COLOUR = "#dddddd"


def weekly(t: CountTable, current: int, title: str, no_data: Sequence[bool] = ()) -> bytes:
    """Incidents per week per source and all sources: this period solid, the previous dashed.
    ``no_data``: per column of ``t``, a week before the first published night. It is left out of
    the lines (this period's shaded grey, the previous period's named in the panel), so an empty
    history is not drawn as a quiet week."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    labels = [*map(str, t.rows), "alla källor"]
    width = max(3.2 * len(labels), 7.0)  # room for the title even with one panel
    fig, axes = plt.subplots(1, len(labels), figsize=(width, 2.8), sharey=False, squeeze=False)
    fig.subplots_adjust(left=0.7 / width, right=0.99, bottom=0.2, top=0.8, wspace=0.25)  # 0.7 in: y labels
    missing = np.zeros(len(t.cols), dtype=bool)
    missing[: len(no_data)] = no_data
    gone = np.flatnonzero(missing[:current]) + 1  # the previous period's weeks: named under the axis
    weeks = "" if not len(gone) else f"{gone[0]}" if len(gone) == 1 else f"{gone[0]}–{gone[-1]}"
    x = np.arange(1, current + 1)
    for k, label in enumerate(labels):
        ax = axes[0][k]
        values, hidden = _values(t, None if k == len(t.rows) else k)
        values = np.where(missing, np.nan, values)
        prev, now = values[:current], values[current:]
        for w in np.flatnonzero(missing[current:]):  # this period's weeks before any data
            ax.axvspan(w + 0.55, w + 1.45, color=NO_DATA_COLOUR, linewidth=0)
        ax.plot(x, prev, "--x", color="#999999", markersize=3, label="föregående period")
        ax.plot(x, now, "-o", color="#1f5f8b", markersize=3, label="denna period")
        for j, h in enumerate(hidden[current:]):
            if h:
                ax.axvspan(j + 0.55, j + 1.45, color=SUPPRESSED_COLOUR, alpha=0.35, linewidth=0)
        ax.set_title(label, fontsize=9)
        ax.set_xticks(x)
        ax.set_xlabel(f"vecka i perioden{f' (föregående: ingen data v. {weeks})' if weeks else ''}", fontsize=8)
        ax.set_ylim(0, max(ax.get_ylim()[1] * 1.08, 5))  # room for the top point; an empty panel spans 0–5
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("händelser", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="lower left")
    keys = ["rött fält = undertryckt vecka", *(["grått fält = ingen data"] if missing[current:].any() else [])]
    fig.suptitle(f"{title} ({', '.join(keys)})", fontsize=10)
    return png(fig)


def striped(cells: np.ndarray, hidden: np.ndarray, vmax: float) -> np.ndarray:
    """The table as an RGB raster, ``CELL_PIXELS`` per cell: shown cells coloured by count, withheld
    ones striped red and white, so no reader takes them for 0 (one image: fast to draw)."""
    import matplotlib

    colours = matplotlib.colormaps["Blues"](np.clip(np.where(hidden, 0, cells) / vmax, 0, 1))[..., :3]
    raster = np.repeat(np.repeat(colours, CELL_PIXELS, axis=0), CELL_PIXELS, axis=1)
    y, x = np.indices(raster.shape[:2])
    stripe = ((x + y) // (STRIPE // 2)) % 2 == 0
    mask = np.repeat(np.repeat(hidden, CELL_PIXELS, axis=0), CELL_PIXELS, axis=1)
    raster[mask & stripe] = matplotlib.colors.to_rgb(SUPPRESSED_COLOUR)
    raster[mask & ~stripe] = (1.0, 1.0, 1.0)
    return raster


Panel = tuple[CountTable, str, Sequence[str], Sequence[str]]  # table, title, row labels, column labels


def grid(
    t: CountTable,
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    overlay: Callable[[Any], None] | None = None,
    size=(9, 3.2),
    extent=None,
) -> bytes:
    """One heatmap; see ``grids``."""
    return grids([(t, title, row_labels, col_labels)], title, overlay=overlay, size=size, extent=extent)


def grids(
    panels: Sequence[Panel],
    title: str,
    *,
    columns: int = 2,
    overlay: Callable[[Any], None] | None = None,
    size=None,
    extent=None,
) -> bytes:
    """Heatmaps of tables' cells with counts written in, withheld cells striped; one figure (one
    PNG) for a family of tables, so they share a colour scale and are drawn at once."""
    plt = _plt()
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=size or (7.5 * columns, 3.0 * rows), squeeze=False)
    fig.subplots_adjust(left=0.1, right=0.9, bottom=0.12, top=0.88, wspace=0.25, hspace=0.35)
    vmax = max([1.0] + [float(np.where(t.suppressed[:-1, :-1], 0, t.cells).max()) for t, *_ in panels if t.cells.size])
    for k, (t, panel_title, row_labels, col_labels) in enumerate(panels):
        _panel(axes[k // columns][k % columns], t, panel_title, row_labels, col_labels, vmax, extent, overlay)
    for k in range(len(panels), rows * columns):
        axes[k // columns][k % columns].set_visible(False)
    mappable = plt.cm.ScalarMappable(norm=plt.Normalize(0, vmax), cmap="Blues")
    fig.colorbar(mappable, ax=axes, fraction=0.02, pad=0.01)
    fig.suptitle(f"{title} (randigt = undertryckt)", fontsize=10)
    return png(fig)


def _panel(
    ax, t: CountTable, title: str, row_labels: Sequence[str], col_labels: Sequence[str], vmax: float, extent, overlay
) -> None:
    cells = t.cells.astype(float)
    hidden = t.suppressed[:-1, :-1]
    n_rows, n_cols = cells.shape
    shown_extent = extent if extent is not None else (-0.5, n_cols - 0.5, n_rows - 0.5, -0.5)
    if cells.size:
        ax.imshow(striped(cells, hidden, vmax), aspect="auto", extent=shown_extent, interpolation="nearest")
    for i, j in zip(*np.nonzero((cells > 0) & ~hidden)):
        x, y = _centre(i, j, n_rows, n_cols, extent)
        ax.text(
            x,
            y,
            f"{int(cells[i, j])}",
            ha="center",
            va="center",
            fontsize=6,
            color="white" if cells[i, j] > 0.6 * vmax else "black",
        )
    if extent is None:
        ax.set_xticks(range(n_cols), col_labels, fontsize=7, rotation=90 if n_cols > 12 else 0)
        ax.set_yticks(range(n_rows), row_labels, fontsize=7)
    if overlay:
        overlay(ax)
    ax.set_title(title, fontsize=9)


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
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.17, top=0.88)
    x = np.arange(len(t.cols)) - n_before
    for k, (label, colour) in enumerate(zip(t.rows, ("#c0392b", "#7f8c8d"))):
        values, hidden = _values(t, k)
        ax.plot(x, values, "-o", markersize=3, color=colour, label=str(label))
        for j in np.flatnonzero(hidden):
            ax.axvspan(x[j] - 0.45, x[j] + 0.45, color=colour, alpha=0.25, linewidth=0)
    ax.axvline(-0.5, color="black", linestyle=":", label="åtgärden börjar")
    ax.set_xlabel("veckor från start", fontsize=8)
    ax.set_ylabel("händelser per vecka", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.set_title(f"{title} (skuggad vecka = undertryckt)", fontsize=10)
    return png(fig)
