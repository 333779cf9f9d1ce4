"""What limits the recommended configurations: where the decode step's time goes, and the time
to first token beside the KV restore it has to wait for.

The model's step time is the sum of per-limiter shares (``roofline.Cost``: compute, memory,
network net of overlap, fixed overheads), so the stacked bar is the step itself; for an
aggregated design it includes the prefill chunk riding along. When the prefill pool sets the
request rate (``bound: prefill_pool``) the decode step is not the limit, and the figure says so.
TTFT overlaps the KV restore with prefill layer by layer (``dse/model/system_solve.py``): it takes
the longer of the two, plus the KV hand-off and queueing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..review import Review
from .style import Figure, save, subplots

STEP_PARTS = (
    ("compute_s", "compute (FLOPs)", "#4c72b0"),
    ("memory_s", "memory (HBM/SRAM bytes)", "#dd8452"),
    ("network_s", "links (collectives, net of overlap)", "#55a868"),
    ("overhead_s", "fixed time (kernels, host work, per-layer sync)", "#8c8c8c"),
)


def breakdown_figure(review: Review, folder: Path) -> Figure | None:
    top = review.top
    if top.empty or not all(c in top for c, _, _ in STEP_PARTS):
        return None
    labels = [f"{r['label']} {r['system']}" for _, r in top.iterrows()]
    y = np.arange(len(top))[::-1]
    fig, (ax1, ax2) = subplots(1, 2, figsize=(12, 0.55 * len(top) + 2.2))
    left = np.zeros(len(top))
    for col, name, color in STEP_PARTS:
        ms = top[col].to_numpy(dtype=np.float64) * 1e3
        ax1.barh(y, ms, left=left, color=color, label=name, height=0.6)
        left += ms
    for yi, (_, r), total in zip(y, top.iterrows(), left):
        note = (
            "prefill pool is the limit" if r["bound"] == "prefill_pool" else f"bound: {r['bound']}"
        )
        ax1.annotate(f"{total:.2f} ms, {note}", (total, yi), xytext=(3, 0), textcoords="offset points",
                     va="center", fontsize=7, color="0.25")  # fmt: skip
    ax1.set_yticks(y, labels)
    ax1.set_xlim(0, left.max() * 1.45)
    ax1.set_xlabel("ms per decode step (the parts sum to the step)")
    ax1.set_title("Decode step time by limiter")
    bar = 0.38
    ax2.barh(y + bar / 2, top["ttft_ms"], height=bar, color="#4c72b0", label="time to first token")
    ax2.barh(y - bar / 2, top["restore_ms"], height=bar, color="#c44e52",
             label="KV restore from host/storage (overlaps prefill)")  # fmt: skip
    ax2.set_yticks(y, labels)
    ax2.set_xlabel("ms per request")
    ax2.set_title("Time to first token and the KV restore inside it")
    handles = [h for ax in (ax1, ax2) for h in ax.get_legend_handles_labels()[0]]
    names = [n for ax in (ax1, ax2) for n in ax.get_legend_handles_labels()[1]]
    fig.legend(handles, names, loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    for ax in (ax1, ax2):
        ax.grid(axis="x", alpha=0.3)
    caption = (
        "Left: where each recommended configuration's decode step goes (compute, memory, "
        "collectives net of overlap, fixed overheads; they sum to the step; aggregated designs "
        "include the prefill chunk they carry). Right: time to first token beside the KV-cache "
        "restore it overlaps with prefill (TTFT takes the longer, plus hand-off and queueing)."
    )
    return save(fig, folder, "breakdown", "Bottleneck breakdown", caption)
