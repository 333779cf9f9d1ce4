"""Why a design is infeasible: ONE table of codes for every path (an instance row of
``dse predict``, a system design of the search), as floats inside ``jit`` and as a sentence
with its fix outside. Codes are never reused: a retired one keeps its text so old result
tables still read."""

from __future__ import annotations

REASONS: dict[str, float] = {
    "ok": 0.0,
    "weights_exceed_memory": 1.0,
    "kv_exceeds_memory": 2.0,  # instance rows (dse predict): this batch's KV does not fit
    "no_sequence_fits": 3.0,
    "disagg_pools_missing": 4.0,  # instance rows: mode=disagg without both pools
    "context_exceeds_memory": 5.0,
    "ffn_pool_too_small": 6.0,
    "prefill_pool_too_small": 7.0,
    "host_memory_exceeded": 8.0,
    # Retired (no longer produced): restores are capped at the tier links' bandwidth and the
    # rest recomputed (``tiers.restore_plan``). Kept so old result tables still read.
    "storage_bandwidth_exceeded": 9.0,
    "pool_smaller_than_worker": 10.0,
    "afd_needs_prefill_pool": 11.0,
    # Parallel layouts inconsistent with the model or the hardware (dse/model/system_feasibility.py
    # ``_layout_checks``; the same rules as dse/scenarios/schema.py ``parse_row``).
    "tp_not_dividing_heads": 12.0,
    "prefill_tp_not_dividing_heads": 13.0,
    "pp_exceeds_layers": 14.0,
    "ep_exceeds_experts": 15.0,
    "ep_not_dividing_tp_dp": 16.0,
    "prefill_ep_exceeds_experts": 17.0,
    "prefill_ep_not_dividing_tp_dp": 18.0,
    "ffn_pp_exceeds_layers": 19.0,
    "ffn_tp_not_dividing_mlp": 20.0,
    "ffn_ep_exceeds_experts": 21.0,
    "decode_units_not_whole_workers": 22.0,
    "prefill_units_not_whole_workers": 23.0,
    "needs_scaleout_network": 24.0,
    "kvp_not_dividing_tp": 25.0,
}
REASON_TEXT: dict[float, str] = {
    0.0: "",
    1.0: "decode/attention weights + workspace exceed usable memory per accelerator; use more "
    "accelerators per worker (tp/pp/ep), a lower weight precision, or attention-FFN disaggregation",
    2.0: "KV cache of this batch does not fit beside the weights; lower batch, use kv_dtype fp8 or "
    "more GPUs",
    3.0: "not even one sequence's KV cache fits beside the weights; use more accelerators or "
    "lower precision",
    4.0: "mode=disagg needs prefill_gpus > 0 and decode_gpus >= tp*pp*dp",
    5.0: "one sequence at the workload's p99 context does not fit in the decode/attention pool; "
    "use fp8/fp4 KV, more accelerators per worker, or a pool with more memory",
    6.0: "the FFN pool's share of the expert/MLP weights does not fit per chip; add ffn_units or "
    "ffn_pp",
    7.0: "weights + one prefill chunk do not fit on a prefill worker; raise prefill_tp/dp",
    8.0: "host_gb_per_gpu exceeds the host tier's memory per GPU; lower it or pick a bigger host",
    9.0: "(older runs) KV restores from context storage exceeded storage_gbs; this version "
    "recomputes what the storage link cannot carry instead",
    10.0: "a pool has fewer accelerators than one of its workers (units < tp*pp*dp)",
    11.0: "attention-FFN disaggregation needs a prefill pool (prefill_units > 0)",
    12.0: "decode tp does not divide the model's attention heads (GPU engines shard whole "
    "heads); pick a tp that divides num_attention_heads",
    13.0: "prefill_tp does not divide the model's attention heads (GPU engines shard whole "
    "heads); pick a prefill_tp that divides num_attention_heads",
    14.0: "pp exceeds the model's layers (a pipeline stage would hold no layer); use pp <= "
    "num_layers",
    15.0: "decode ep exceeds the model's routed experts (an EP rank would hold no expert); use "
    "ep <= num_experts",
    16.0: "decode ep does not divide tp*dp (experts are laid over the tp*dp ranks of a stage); "
    "pick an ep that divides tp*dp",
    17.0: "prefill_ep exceeds the model's routed experts (an EP rank would hold no expert); use "
    "prefill_ep <= num_experts",
    18.0: "prefill_ep does not divide prefill_tp*prefill_dp (experts are laid over those ranks); "
    "pick a prefill_ep that divides prefill_tp*prefill_dp",
    19.0: "ffn_pp exceeds the model's layers (an FFN layer group would hold no layer); use "
    "ffn_pp <= num_layers",
    20.0: "ffn_tp does not divide the MLP/expert intermediate size it splits (GPU engines shard "
    "whole columns); pick an ffn_tp that divides it",
    21.0: "the FFN pool's EP degree per layer group, ffn_units/(ffn_pp*ffn_tp), exceeds the "
    "model's routed experts; lower ffn_units or raise ffn_pp or ffn_tp",
    22.0: "decode_units is not a whole number of decode workers (tp*pp*dp); make decode_units a "
    "multiple of tp*pp*dp",
    23.0: "prefill_units is not a whole number of prefill workers (prefill_tp*prefill_dp); make "
    "prefill_units a multiple of prefill_tp*prefill_dp",
    24.0: "needs a scale-out network the accelerator lacks (scaleout_bandwidth 0): a worker "
    "larger than the scale-up domain, or a P/D or attention-FFN split between pools; keep "
    "tp*pp*dp within scaleup_domain and serve aggregated on one pool",
    25.0: "kvp does not divide tp (KV-parallel decode splits each TP group into kvp equal "
    "slices); pick a kvp that divides tp",
}
