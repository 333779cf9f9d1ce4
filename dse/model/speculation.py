"""Speculative decoding: how many tokens a verify step commits, and what drafting costs.

Methods (``SPEC_METHODS``, a float code in the system design):

* ``mtp``: a multi-token-prediction module or EAGLE-style head, one decoder layer of the
  target's shape run once per draft token (DeepSeek-V3 §2.2; ``step.draft_cost``).
* ``draft_model``: a separate small dense model of ``draft_params_b`` billion parameters run
  ``k`` times per step on the same GPUs (Leviathan et al.).
* ``ngram``: prompt-lookup / suffix drafting over the session's own context (SuffixDecoding,
  TRT-LLM n-gram): proposals come from a host-side suffix index, so the accelerator pays only
  verification. Agent loops re-emit tool arguments and file content, so it accepts well there.

Acceptance is a property of the *workload* (code and agent loops accept more than chat;
workloads.md §3, §9), so the per-method per-token acceptance comes from the workload profile.
Expected tokens per verify step: ``tau = (1 - a^(k+1)) / (1 - a)`` (Leviathan, Kalman, Matias,
ICML'23). Verification is ``k + 1`` tokens per sequence in the target's forward pass, so the
speed-up shrinks as the batch grows and the step turns compute-bound (the batch-erosion model
of workloads.md §3 falls out of the roofline; ``tests/model/test_speculation.py``).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from .kernels import DENSE_MLP_KERNELS, GQA_ATTENTION_KERNELS
from .layer import Segment, Setup, _gemm
from .numerics import safe_div, safe_pow
from .roofline import Cost, select_cost
from .step import draft_cost, kernel_overhead

SPEC_METHODS = ("none", "mtp", "draft_model", "ngram")
# A small draft model (Llama-3.2-1B: 16 layers, 3B: 28) pays its kernels' fixed time per layer;
# 24 layers assumed.
DRAFT_MODEL_LAYERS = 24.0


def expected_tokens_per_step(acceptance: Array, k: Array) -> Array:
    """``(1 - a^(k+1)) / (1 - a)``, the k + 1 limit at a = 1, and 1 without drafts."""
    a = jnp.clip(acceptance, 0.0, 1.0)
    formula = safe_div(1.0 - safe_pow(a, k + 1.0), 1.0 - a, 0.0)
    formula = jnp.where(a >= 1.0, k + 1.0, formula)
    return jnp.where(k > 0, jnp.clip(formula, 1.0, k + 1.0), 1.0)


def method_acceptance(method: Array, per_method: Array) -> Array:
    """Per-token acceptance of ``method`` (code into SPEC_METHODS) from the workload's
    ``[mtp, draft_model, ngram]`` acceptances; 0 for ``none``."""
    idx = jnp.clip(method - 1.0, 0.0, 2.0).astype(jnp.int32)
    return jnp.where(method > 0, jnp.take(per_method, idx), 0.0)


def draft_model_cost(s: Setup, seg: Segment, k: Array, draft_params_b: Array) -> Cost:
    """``k`` sequential forward steps of a dense draft model, TP-sharded like the target."""
    d = s.design
    params = draft_params_b * 1e9 / d.tp
    width = s.arch.hidden_size
    one = _gemm(s, seg.seqs, params, d.weight_bits, width, width / d.tp, d.gemm_bits)
    # A dense GQA draft layer launches attention + MLP kernels; plus its LM head and sampling.
    kernels = DRAFT_MODEL_LAYERS * (GQA_ATTENTION_KERNELS + DENSE_MLP_KERNELS) + 2.0
    fixed = kernel_overhead(s, jnp.asarray(kernels), jnp.asarray(DRAFT_MODEL_LAYERS), 0.0)
    return (one + fixed).scale(k)


def speculation_cost(
    s: Setup, seg: Segment, method: Array, k: Array, draft_params_b: Array
) -> Cost:
    """Drafting cost per step for any method (selected with ``where``; all are cheap)."""
    mtp = draft_cost(s, seg, k)
    model = draft_model_cost(s, seg, k, draft_params_b)
    zero = Cost(*(jnp.zeros_like(k),) * 5)
    return select_cost(method == 1.0, mtp, select_cost(method == 2.0, model, zero))
