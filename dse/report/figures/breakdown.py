"""What limits the recommended configurations: the decode step's time per resource and the
time to first token split into KV restore and prefill.

The model's step time is a smooth maximum of compute and memory time plus the part of the
network time that does not overlap plus fixed overheads (``dse/model/step.py``), so the bars
are each resource's own time for one step, not slices that add up; the resource with the
longest bar is the one to buy more of (the ``bound`` column says which one the model picked).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..review import Review
from .style import Figure, save

STEP_PARTS = (
    ("compute_s", "compute (FLOPs)", "#4c72b0"),
    ("memory_s", "memory (HBM/SRAM bytes)", "#dd8452"),
    ("network_s", "links (scale-up/out collectives)", "#55a868"),
    ("overhead_s", "overheads (launch, scheduling, per-layer)", "#8c8c8c"),
)


def breakdown_figure(review: Review, folder: Path) -> Figure | None:
    top = review.top
    if top.empty or not all(c in top for c, _, _ in STEP_PARTS):
        return None
    labels = [f"{r['label']} {r['system']}" for _, r in top.iterrows()]
    y = np.arange(len(top))[::-1]
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(12, 0.6 * len(top) + 2.2), constrained_layout=True
    )
    h = 0.8 / len(STEP_PARTS)
    for k, (col, name, color) in enumerate(STEP_PARTS):
        ax1.barh(y + (1.5 - k) * h, top[col] * 1e3, height=h, color=color, label=name)
    ax1.set_yticks(y, labels)
    ax1.set_xlabel("ms per decode step, each resource alone")
    ax1.set_title("Decode step: time per resource (longest = the limit)")
    ax1.legend(fontsize=7, frameon=False, loc="lower right")
    for yi, (_, r) in zip(y, top.iterrows()):
        ax1.annotate(f"bound: {r['bound']}", (0, yi + 0.45), fontsize=7, color="0.25")
    restore = top["restore_ms"].to_numpy(dtype=np.float64)
    prefill = np.maximum(top["ttft_ms"].to_numpy(dtype=np.float64) - restore, 0.0)
    ax2.barh(y, prefill, color="#4c72b0", label="prefill of uncached tokens + queueing")
    ax2.barh(y, restore, left=prefill, color="#c44e52", label="KV restore from host/storage tiers")
    ax2.set_yticks(y, labels)
    ax2.set_xlabel("ms per request")
    ax2.set_title("Time to first token")
    ax2.legend(fontsize=7, frameon=False, loc="lower right")
    for ax in (ax1, ax2):
        ax.grid(axis="x", alpha=0.3)
    caption = (
        "Left: time each resource needs for one decode step of the recommended configurations "
        "(compute and memory overlap, so bars do not add up to the step). Right: time to first "
        "token split into KV-cache restore and prefill."
    )
    return save(fig, folder, "breakdown", "Bottleneck breakdown", caption)
