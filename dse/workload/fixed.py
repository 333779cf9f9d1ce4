"""A fixed-length benchmark workload: every request has the same ISL and OSL, none shares a prefix.

Serving benchmarks and configurators (NVIDIA aiconfigurator's ``cli default``, TRT-LLM's
``benchmark_serving``, InferenceX, MLPerf-style sweeps with constant lengths) ask one question:
a steady stream of *independent* requests, each ``isl`` prompt tokens and ``osl`` output
tokens, no multi-turn sessions, no tool or think gaps, no prefix reuse between requests.
:func:`fixed_length_profile` writes that traffic directly as a :class:`WorkloadProfile`,
without simulating sessions, so a :class:`dse.stack.Stack` answers the same question those
tools do::

    Stack(workload=fixed_length_profile(4000, 500))

What each field becomes (the profile docstrings define them):

* ``input_tokens = isl``, ``output_tokens = osl``, ``max_context = isl + osl`` (every request
  is the p99 one);
* ``decode_context = isl + osl / 2``: the output-weighted mean context while decoding;
* no reuse: ``new_tokens = isl``, ``reusable_fraction = 0``, ``prefill_past = 0`` and an
  all-zero hit curve, so prompt caching (on or off in the system design) changes nothing;
* one request per "session", one agent in flight, no gap (``gap_s = 0``) and no sub-agents;
* speculative acceptance from :class:`~dse.workload.params.SessionParams` defaults (only used
  when a design turns speculation on).

``prefix`` mirrors aiconfigurator's ``--prefix``: the first ``prefix`` tokens of every prompt are
already cached (a shared system prompt that is always resident). It is 0 by default, as in
aiconfigurator's default search. With a prefix the hit rate is ``prefix / isl`` at any cache
size and load (one hot shared prompt stays resident; see ``fixed_profile``), only
``isl - prefix`` tokens are prefilled and they attend to the ``prefix`` cached ones. The profile itself is the model's
:func:`dse.model.fixed_workload.fixed_profile`, the one ``dse predict``'s serving rows use.
"""

from __future__ import annotations

import numpy as np

from dse.jax_config import configure
from dse.model.fixed_workload import fixed_profile
from dse.model.workload import MAX_LENGTH_CV, WorkloadProfile
from dse.values import number
from dse.workload.params import SessionParams
from dse.workload.profile import _f64


def fixed_length_profile(
    isl: float,
    osl: float,
    prefix: float = 0.0,
    params: SessionParams | None = None,
    *,
    isl_cv: float = 0.0,
    osl_cv: float = 0.0,
    length_corr: float = 0.0,
) -> WorkloadProfile:
    """Profile of a steady stream of independent requests of ``isl`` prompt and ``osl`` output
    tokens (aiconfigurator-style benchmark traffic). ``prefix``: cached prompt tokens per request
    (aiconfigurator's ``--prefix``; 0 = no reuse). ``params`` supplies the speculative acceptance
    (default: ``SessionParams()``). ``isl_cv``, ``osl_cv``, ``length_corr``: the spread of a
    dataset's lengths around those means (``conf/dataset/``; 0 = every request the same)."""
    configure()
    isl, osl, prefix = float(isl), float(osl), float(prefix)
    check_length_shape(isl_cv, osl_cv, length_corr)
    if not (np.isfinite(isl) and isl >= 1.0):
        raise ValueError(f"isl={isl:g} must be a finite number of prompt tokens >= 1")
    if not (np.isfinite(osl) and osl >= 1.0):
        raise ValueError(f"osl={osl:g} must be a finite number of output tokens >= 1")
    if not (np.isfinite(prefix) and 0.0 <= prefix < isl):
        raise ValueError(f"prefix={prefix:g} must be >= 0 and below isl={isl:g}")
    p = params if params is not None else SessionParams()
    acceptance = [p.spec_acceptance_mtp, p.spec_acceptance_draft, p.spec_acceptance_ngram]
    return fixed_profile(
        _f64(isl), _f64(osl), _f64(prefix), _f64(acceptance),
        isl_cv=_f64(isl_cv), osl_cv=_f64(osl_cv), length_corr=_f64(length_corr),
    )  # fmt: skip


def check_length_shape(isl_cv: float, osl_cv: float, length_corr: float) -> None:
    """Raise one line if the length moments are not a possible dataset's."""
    for name, v in (("isl_cv", isl_cv), ("osl_cv", osl_cv)):
        number(name, v, maximum=MAX_LENGTH_CV)  # std / mean; 0 = all requests the same
    number("length_corr", length_corr, minimum=-1.0, maximum=1.0)


__all__ = ["check_length_shape", "fixed_length_profile"]
