"""Agentic-workload figures: the context length of one session's requests (the seed's Fig. 4),
prompt-cache hit rate and cost against KV-cache tier sizes, and session wall time against cost
per session.

Both draw what the study wrote (``dse.workload.record``: ``session`` and ``cache_curve`` tables,
``summary.json``'s ``workload_cache``), so the session and the hit-rate curve are the ones the
study's profile was built from and nothing is re-simulated. Fixed-length traffic
(``traffic: {isl, osl}``) has neither, and a run folder without them gets neither figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..load import RunResults
from ..review import Review
from .style import PALETTE, Figure, colors_for, pareto_2d, sample, save, subplots

TIER_FIELDS = ("host_gb_per_gpu", "storage_tb")


def session_figure(run: RunResults, workload: str, folder: Path) -> Figure | None:
    df, facts = run.table("session"), run.summary.get("workload_cache") or {}
    if df.empty:
        return None
    fig, ax = subplots(figsize=(9, 3.8))
    main, sub = df[df["agent"] == "main"], df[df["agent"] == "sub"]
    edges = np.arange(len(df) + 1) - 0.5
    is_main = (df["agent"] == "main").to_numpy()
    k_tokens = df["input_tokens"].to_numpy() / 1e3
    # stairs: one filled patch per series (hundreds of bar patches take seconds to draw)
    ax.stairs(np.where(is_main, 0.0, k_tokens), edges, fill=True, color=PALETTE[1], alpha=0.7,
              label=f"sub-agent requests ({len(sub)})")  # fmt: skip
    ax.stairs(np.where(is_main, k_tokens, 0.0), edges, fill=True, color=PALETTE[0],
              label=f"main-agent requests ({len(main)})")  # fmt: skip
    ax.stairs(df["cached_prefix_tokens"].to_numpy() / 1e3, edges, fill=True, color="k", alpha=0.18,
              label="of which cached prefix (infinite cache)")  # fmt: skip
    for i in main.index[main["compacted"]]:
        ax.axvline(i, color="r", lw=0.8, ls="--")
        ax.annotate("compaction", (i, ax.get_ylim()[1] * 0.95), fontsize=7, color="r", ha="right",
                    rotation=90, va="top")  # fmt: skip
    ax.set_xlabel("request number in the session (time order)")
    ax.set_ylabel("input context (K tokens)")
    ax.set_title(f"One simulated session of '{workload}': context length per request")
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    caption = (f"{len(df)} requests over {df['t_start_s'].max() / 60:.0f} min (seed {facts.get('session_seed', '?')}, "
               f"conf/workload/{workload}.yaml); compare the seed article's Figure 4.")  # fmt: skip
    return save(fig, folder, "session", "Context length per request of one session", caption)


def cache_figure(review: Review, run: RunResults, folder: Path) -> Figure | None:
    curve, facts = run.table("cache_curve"), run.summary.get("workload_cache")
    if review.top.empty or curve.empty or not facts:
        return None
    first = review.top.iloc[0]
    rate = float(first["requests_s"])
    # The curve is over capacity / request rate (dse/model/tiers.py): at the system's own rate a
    # grid value g means g * rate cached tokens.
    grid, hit = curve["capacity_token_s"].to_numpy(), curve["hit_rate"].to_numpy()
    kv = float(facts["kv_bytes_per_token"][f"{float(first['kv_bits']):g}"])
    tb = grid * rate * kv / 1e12
    fig, (ax1, ax2) = subplots(1, 2, figsize=(12, 4.2))
    ax1.plot(np.maximum(tb, 1e-3), 100 * hit, color="k", lw=1.5, label="LRU + TTL hit rate")
    ax1.set_xscale("log")
    # Tier capacities as the model stacks them (dse/model/tiers.py): hits in HBM, HBM + host,
    # HBM + host + storage. The host tier sits beside the prefill pool when there is one
    # (dse/model/pools.py); the HBM cache size is read off the curve at its own hit rate.
    gpus = (
        float(first["prefill_units"])
        if float(first["prefill_units"]) > 0
        else float(first["units"])
    )
    hbm_tb = _capacity_at(hit, tb, float(first["hit_hbm"]))
    host_tb = hbm_tb + float(first["host_gb_per_gpu"]) * gpus / 1e3
    storage_tb = host_tb + float(first["storage_tb"])
    for x, name, c, size in ((hbm_tb, "HBM cache (from its hit rate)", PALETTE[0], hbm_tb),
                             (host_tb, "+ host tier", PALETTE[2], host_tb - hbm_tb),
                             (storage_tb, "+ storage", PALETTE[4], storage_tb - host_tb)):  # fmt: skip
        if size > 0:
            ax1.axvline(x, color=c, ls="--", lw=1, label=f"{first['label']} {name}: {size:,.3g} TB")
    ax1.axhline(100 * float(first["hit_rate"]), color=PALETTE[3], lw=1,
                label=f"{first['label']} hit rate {100 * float(first['hit_rate']):.1f} %")  # fmt: skip
    ax1.set_xlabel(
        f"KV-cache capacity, TB (at {first['label']}'s {rate:,.0f} req/s, {kv / 1e3:,.0f} KB/token)"
    )
    ax1.set_ylabel("prompt tokens served from cache (%)")
    ax1.set_title(f"Cache hit rate vs capacity (TTL {facts['prompt_cache_ttl_s']:g} s)")
    ax1.legend(fontsize=7, frameon=False, loc="lower right")
    ax1.grid(alpha=0.3)
    _cost_vs_tiers(ax2, review)
    caption = ("Left: token-weighted prompt-cache hit rate of the study's workload against cache "
               "capacity (from the simulated population's reuse distances). Right: cost against the "
               "tier sizes the study searched, or, when it searched none, where the recommended "
               "configurations find their cached tokens.")  # fmt: skip
    return save(fig, folder, "cache", "Cache hit rate and cost vs KV tier sizes", caption)


def _capacity_at(hit: np.ndarray, capacity: np.ndarray, target: float) -> float:
    """The smallest capacity whose hit rate reaches ``target`` (the curve is non-decreasing
    and flat once every reusable token fits), interpolated on the rising part."""
    if target <= 0:
        return 0.0
    i = int(np.searchsorted(hit, target, side="left"))
    if i >= len(hit):
        return float(capacity[-1])
    if i == 0 or hit[i] == hit[i - 1]:
        return float(capacity[i])
    w = (target - hit[i - 1]) / (hit[i] - hit[i - 1])
    return float(capacity[i - 1] + w * (capacity[i] - capacity[i - 1]))


def _cost_vs_tiers(ax, review: Review) -> None:
    cand = review.candidates
    # A tier size the study searched varies inside a system (systems differ by their presets).
    varying = [f for f in TIER_FIELDS
               if f in cand and len(cand) and cand.groupby("system")[f].nunique().max() > 1]  # fmt: skip
    metric = review.rank.metric
    if varying:
        x = varying[0]
        keys = ["system", *varying[1:2]]
        colors = {s: PALETTE[i % 10] for i, s in enumerate(review.systems)}
        styles = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
        values = sorted(cand[varying[1]].unique()) if len(varying) > 1 else []
        for key, part in cand.groupby(keys, sort=False):
            system, *other = key if isinstance(key, tuple) else (key,)
            best = part.groupby(x)[metric].agg("max" if review.rank.maximize else "min")
            label = system + (f", {varying[1]} = {other[0]:g}" if other else "")
            ax.plot(best.index, best.to_numpy(), marker="os^vDP"[values.index(other[0]) % 6] if other else "o", color=colors.get(system, "k"),
                    ls=styles[values.index(other[0]) % len(styles)] if other else "-", label=label)  # fmt: skip
        ax.set_xlabel(x)
        ax.set_ylabel(f"best {metric} over the rest of the space")
        ax.set_title(f"{metric} vs KV tier size")
        ax.legend(fontsize=7, frameon=False)
    else:
        top = review.top
        parts = [("hit_hbm", "HBM"), ("hit_host", "host"), ("hit_storage", "storage")]
        left = np.zeros(len(top))
        y = np.arange(len(top))[::-1]
        for k, (col, name) in enumerate(parts):
            v = 100 * top[col].to_numpy(dtype=np.float64)
            ax.barh(y, v, left=left, color=PALETTE[k], label=f"hit in {name}")
            left += v
        ax.barh(y, 100 - left, left=left, color="0.85", label="miss (prefilled)")
        ax.set_yticks(y, [f"{r['label']} {r['system']} (${r['usd_per_mtok']:.2f}/Mtok)"
                          for _, r in top.iterrows()])  # fmt: skip
        ax.set_xlabel("prompt tokens (%)")
        ax.set_title("Where cached tokens come from (tier sizes were not searched)")
        ax.legend(fontsize=7, frameon=False, loc="lower right")
    ax.grid(alpha=0.3)


def session_time_figure(review: Review, folder: Path) -> Figure | None:
    """p95 session wall time against $ per session, per system (left), and where the mean
    session's critical path goes for each recommended configuration (right)."""
    cloud, top = review.candidates, review.top
    if cloud.empty or "session_minutes_p95" not in cloud or top.empty:
        return None
    colors = colors_for(review.mixes)
    fig, (ax, bars) = subplots(1, 2, figsize=(13, 4.6))
    for mix in review.mixes:
        mine = cloud[cloud["mix"] == mix]
        if mine.empty:
            continue
        bg = sample(mine, 4000)
        ax.scatter(bg["usd_per_session"], bg["session_minutes_p95"], s=3, color=colors[mix],
                   alpha=0.15, lw=0, rasterized=True)  # fmt: skip
        # The staircase of the cheapest $/session at each p95 or shorter.
        idx = pareto_2d(-mine["usd_per_session"].to_numpy(), mine["session_minutes_p95"].to_numpy(),
                        False)  # fmt: skip
        stair = mine.iloc[idx].sort_values("usd_per_session")
        ax.step(stair["usd_per_session"], stair["session_minutes_p95"], where="post",
                color=colors[mix], lw=1.4, label=mix)  # fmt: skip
    for _, row in top.iterrows():
        ax.plot(row["usd_per_session"], row["session_minutes_p95"], marker="*", ms=10, ls="none",
                color=colors.get(row["mix"], "k"), mec="k", mew=0.6)  # fmt: skip
        ax.annotate(row["label"], (row["usd_per_session"], row["session_minutes_p95"]),
                    xytext=(4, 4), textcoords="offset points", fontsize=8, weight="bold")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("$ per agent session (all-in cost)")
    ax.set_ylabel("p95 session wall time (minutes)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    labels = [str(r) for r in top["label"]]
    ttft = top["session_ttft_minutes"].to_numpy(dtype=np.float64)
    decode = top["session_decode_minutes"].to_numpy(dtype=np.float64)
    rest = np.maximum(top["session_minutes"].to_numpy(dtype=np.float64) - ttft - decode, 0.0)
    y = np.arange(len(top))
    left = np.zeros(len(top))
    for part, name, color in ((ttft, "TTFT", PALETTE[3]), (decode, "decoding", PALETTE[0]),
                              (rest, "tool gaps and hand-backs", "0.7")):  # fmt: skip
        bars.barh(y, part, left=left, color=color, label=name)
        left += part
    fan = top["session_fanout_minutes"].to_numpy(dtype=np.float64)
    bars.barh(y + 0.32, fan, height=0.18, color="k", alpha=0.55,
              label="of the total: the main agent waiting on sub-agents")  # fmt: skip
    bars.set_yticks(y, labels)
    bars.invert_yaxis()
    bars.set_xlabel("mean session wall time on the critical path (minutes)")
    bars.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    bars.grid(axis="x", alpha=0.3)
    # The p95 axis stops above the staircases: a few slow designs would flatten them.
    upper = float(np.nanpercentile(cloud["session_minutes_p95"], 98))
    ax.set_ylim(0.0, max(upper, float(top["session_minutes_p95"].max())) * 1.1)
    fig.suptitle(review.run.title)
    caption = (
        "Left: each system's designs (faint) and its staircase of the cheapest $/session at each "
        "p95 session time; stars: recommended configurations. Right: the mean session's critical "
        "path (dse/model/session_time.py): TTFT and decoding of the calls the session waits on "
        "(main agent and, per fan-out, the slowest sub-agent), then tool gaps and hand-backs; the "
        "black bar: how much of that total the main agent spends waiting on its sub-agents."
    )
    return save(fig, folder, "session_time", "Session wall time vs $ per session", caption)
