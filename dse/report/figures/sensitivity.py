"""Which hardware knob moves the objectives: elasticities from the model's gradients.

The run's ``sensitivities`` table (``search=sensitivities`` or ``search=gradient``; ``dse/search/gradients.py``)
holds ``d ln metric / d ln x`` at frontier designs: +0.2 means 1 % more of ``x`` gives 0.2 %
more of the metric. Only knobs with a non-zero effect on some shown design are drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..review import Review
from .style import PALETTE, Figure, save, subplots

MAX_DESIGNS = 3


def chosen_sensitivities(review: Review) -> pd.DataFrame:
    """Sensitivity rows of the recommended designs (or the first ones when none matches)."""
    table = review.run.table("sensitivities")
    if table.empty:
        return table
    metrics = [o.metric for o in review.objectives if o.metric in set(table["metric"])]
    table = table[table["metric"].isin(metrics) & table["feasible"].astype(bool)]
    labels = dict(zip(review.top["point"], review.top["label"])) if len(review.top) else {}
    point = table["point"] if "point" in table else pd.Series(-1, index=table.index)
    table = table.assign(
        label=[labels.get(p, f"frontier design {d}") for p, d in zip(point, table["design"])]
    )
    mine = table.loc[point.isin(list(labels)), "design"].unique()
    designs = list(mine if len(mine) else table["design"].unique())[:MAX_DESIGNS]
    return table[table["design"].isin(designs)]


def sensitivity_figure(review: Review, folder: Path) -> Figure | None:
    table = chosen_sensitivities(review)
    if table.empty:
        return None
    metrics = list(dict.fromkeys(table["metric"]))
    moving = table.groupby("field")["elasticity"].apply(lambda e: np.abs(e).max() > 1e-6)
    fields = sorted(moving[moving].index)
    if not fields:
        return None
    designs = list(dict.fromkeys(table["design"]))
    fig, axes = subplots(1, len(metrics), figsize=(5.5 * len(metrics), 0.45 * len(fields) + 1.8),
                          squeeze=False)  # fmt: skip
    y = np.arange(len(fields))[::-1]
    h = 0.8 / len(designs)
    for ax, metric in zip(axes[0], metrics):
        for k, d in enumerate(designs):
            rows = table[(table["design"] == d) & (table["metric"] == metric)].set_index("field")
            e = rows["elasticity"].reindex(fields).fillna(0.0).to_numpy()
            name = f"{rows['label'].iloc[0]} ({rows['hardware'].iloc[0]})" if len(rows) else str(d)
            ax.barh(y - (k - (len(designs) - 1) / 2) * h, e, height=h, color=PALETTE[k], label=name)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_yticks(y, fields)
        ax.set_xlabel(f"elasticity: % change of {metric} per +1 % of the knob")
        ax.set_title(metric)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].legend(fontsize=7, frameon=False)
    caption = (
        "Gradients of the model (forward-mode Jacobian) at the recommended designs, as "
        "elasticities. *_scale knobs scale the decode chip's spec; tier knobs are physical sizes. "
        "For a metric to minimize ($/Mtok) a negative bar is the good direction. At kinks (a pool "
        "switching roles, a cap binding) the derivative is one-sided."
    )
    return save(fig, folder, "sensitivity", "Sensitivity to hardware (gradients)", caption)
