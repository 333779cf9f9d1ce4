"""Shared figure conventions: one colour per system (hardware mix), files in PNG + SVG.

Figures are ``matplotlib.figure.Figure`` objects drawn and saved without pyplot, so making a
report never switches the caller's backend (a notebook stays inline) and the style applies only
inside :data:`STYLE`'s ``rc_context``. Files are reproducible: SVG element ids are salted with a
constant and the date metadata is dropped, so the same results give the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from PIL import Image  # matplotlib's own dependency

from ...files import atomic_path

PNG_DPI = 110  # ~1.3K px wide for a 12-inch figure: legible, and small enough to commit examples
PALETTE = matplotlib.colormaps["tab10"].colors
STYLE = {"svg.hashsalt": "dse", "font.size": 9, "axes.titlesize": 10}


def subplots(*grid, squeeze: bool = True, **kw):
    """``pyplot.subplots`` without pyplot: no global figure manager, no backend switch."""
    from matplotlib.figure import Figure as Canvas

    fig = Canvas(layout="constrained", **kw)
    return fig, fig.subplots(*grid, squeeze=squeeze)


def style():
    """The report's matplotlib settings, for the duration of a ``with`` block only."""
    return matplotlib.rc_context(STYLE)


@dataclass(frozen=True)
class Figure:
    name: str  # file stem under figures/
    title: str
    caption: str
    png: Path
    svg: Path


def save(fig, folder: Path, name: str, title: str, caption: str) -> Figure:
    folder.mkdir(parents=True, exist_ok=True)
    png, svg = folder / f"{name}.png", folder / f"{name}.svg"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, bbox_inches="tight")
    # 256-colour palette (median cut, no dither): plots have few colours, files shrink ~3x (the
    # HTML embeds them) and look the same; deterministic, so reports stay byte-identical.
    image = Image.open(buf).convert("RGB")
    with atomic_path(png) as tmp:
        image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            tmp, format="PNG", optimize=True
        )
    with atomic_path(svg) as tmp:
        fig.savefig(
            tmp, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None}
        )
    return Figure(name, title, caption, png, svg)


def colors_for(names) -> dict[str, tuple]:
    """Stable colours: names in first-seen order (the space's order of systems)."""
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(dict.fromkeys(names))}


def mix_labels(frame: pd.DataFrame) -> pd.Series:
    """Per design, 'system (its hardware mix)': what the figures colour by. A system whose
    pools take several accelerators in one study gets one colour per mix."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    ffn = frame.get("ffn_units", pd.Series(0, index=frame.index)).astype(float) > 0
    parts = zip(frame["system"], frame["decode_hardware"], frame["prefill_hardware"],
                frame.get("ffn_hardware", frame["decode_hardware"]), ffn)  # fmt: skip
    labels = [f"{s} ({' + '.join(dict.fromkeys([d, p, f] if use else [d, p]))})"
              for s, d, p, f, use in parts]  # fmt: skip
    return pd.Series(labels, index=frame.index, dtype=object)


def pareto_2d(x: np.ndarray, y: np.ndarray, y_larger_is_better: bool = True) -> np.ndarray:
    """Indices of the (max x, best y) staircase, sorted by x ascending: the best y one can
    reach at each interactivity or above."""
    sign = 1.0 if y_larger_is_better else -1.0
    x, y = np.asarray(x, dtype=np.float64), sign * np.asarray(y, dtype=np.float64)
    order = np.lexsort((-y, -x))  # x descending, best y first among ties
    ys = y[order]
    before = np.maximum.accumulate(np.concatenate([[-np.inf], ys[:-1]]))
    return order[ys > before][::-1]


def sample(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """A deterministic subsample for scatter backgrounds (every k-th row)."""
    if len(frame) <= n:
        return frame
    return frame.iloc[:: int(np.ceil(len(frame) / n))]
