"""Session wall time: how long an agent session takes on a design, along its critical path.

A session is a main agent's chain of LLM calls separated by tool (or human) gaps; some main
turns spawn parallel sub-agents, each a chain of calls of its own, and the main agent resumes
only when the slowest of them has handed back (the Claude Code Task tool; the seed: "variance in
any single agent propagates through the entire pipeline"). Its wall time is therefore

    T = sum over main calls (latency + gap) + sum over fan-outs max over sub-agent chains
        (sum over the chain's calls (latency + gap) + hand-back)

and a call's latency on a design is ``TTFT + output_tokens * TPOT``. The workload carries the
critical-path structure of a sample of simulated sessions (``dse.workload.structure``): per
session, the main agent's totals, and per fan-out, each sub-agent chain's totals, as the five
coefficients ``COEFFICIENTS``. A call's latency is linear in them, so every chain's time is a
dot product with the design's latencies, and the max over a fan-out's chains is taken exactly:
which sub-agent gates the main agent changes with the design (a chain of many short calls is
the slowest on a high-TTFT design, one of few long answers on a slow decoder), and the spread
of the chains raises the expected maximum. ``tests/model/test_session_time.py`` checks the
result against the session generator re-run at the design's speeds (a brute-force event
simulation of the same session).

Per request (ASSUMPTIONS, named): TTFT is the system's mean minus the mean request's own prefill,
plus a prefill proportional to the request's own uncached tokens (a sub-agent's first, uncached
call pays for its whole prompt); every request sees the system's mean queueing and TPOT, i.e.
the session is one of many the system carries at its operating point. What varies from request
to request at random (queueing, the iteration a prompt lands in, speculation; ``tails.py``) adds
its variance per call on the critical path (independent across calls); it does not enter the
maximum over chains (a chain of ~5-15 calls averages it out). The session-to-session spread
comes from the sampled sessions themselves; p50 and p95 are those of a lognormal with the
sessions' mean and total variance (Fenton-Wilkinson, as ``tails.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from .numerics import ordered_sum, safe_div
from .tails import Spread

# Critical-path coefficients of a chain of calls, in this order: calls, uncached prompt tokens,
# output tokens, non-LLM seconds (tool gaps and the hand-back), sum of squared output tokens.
COEFFICIENTS = ("calls", "new_tokens", "output_tokens", "gap_s", "output_sq")
# Sessions sampled, fan-outs over all of them, sub-agent chains per fan-out: fixed shapes, so
# profiles stack and every workload shares one compiled program. 16 seed-like sessions carry ~9
# fan-outs of 3 chains each; a deep-research session ~13 of 5 (the presets' widest fan-out;
# Anthropic's lead agent spawns 3-5, workloads.md l.74).
SESSION_SLOTS = 16
FANOUT_SLOTS = 192
CHAIN_SLOTS = 8
# Standard-normal quantiles of the reported session percentiles: p50, p95.
SESSION_PERCENTILES = (50, 95)
_Z = (0.0, 1.6448536269514722)


class RequestLatency(NamedTuple):
    """A replica's per-request latency model (seconds; variances in s^2)."""

    ttft: Array  # mean TTFT
    prefill: Array  # the mean request's own prefill, part of ``ttft``
    new_tokens: Array  # the mean request's uncached prompt tokens that ``prefill`` is for
    ttft_variance: Array  # per-request variance of TTFT not due to the prompt's length
    tpot: Array  # mean time per output token
    tpot_variance: Array  # per-request variance of a request's mean TPOT

    def time(self, c: Array) -> tuple[Array, Array, Array]:
        """(total, TTFT part, decode part) of chains ``c`` [..., COEFFICIENTS] in seconds; the
        total includes the gaps."""
        per_token = safe_div(self.prefill, jnp.maximum(self.new_tokens, 1.0), 0.0)
        ttft = c[..., 0] * (self.ttft - self.prefill) + c[..., 1] * per_token
        decode = c[..., 2] * self.tpot
        return ttft + decode + c[..., 3], ttft, decode

    def jitter(self, c: Array) -> Array:
        """Variance (s^2) the calls of chains ``c`` add at random."""
        return c[..., 0] * self.ttft_variance + c[..., 4] * self.tpot_variance


def request_latency(
    ttft: Array,
    prefill: Array,
    ttft_sd: Array,
    tpot: Array,
    tpot_sd: Array,
    new_tokens: Array,
    new_tokens_cv: Array,
) -> RequestLatency:
    """A replica's :class:`RequestLatency` from its metrics (seconds): mean TTFT, the mean
    request's own prefill, the per-request standard deviations, and its workload's mean and cv
    of uncached prompt tokens. The prompt-length part of TTFT's variance (``tails.py``: ``cv_new
    * prefill``) is left out of the random part: the sampled sessions carry each call's own
    tokens."""
    from_length = (prefill * new_tokens_cv) ** 2
    return RequestLatency(
        ttft=ttft,
        prefill=prefill,
        new_tokens=new_tokens,
        ttft_variance=jnp.maximum(ttft_sd**2 - from_length, 0.0),
        tpot=tpot,
        tpot_variance=tpot_sd**2,
    )


class SessionTimes(NamedTuple):
    """Per design, in minutes: the mean, p50 and p95 session wall time, and the mean's parts
    on the critical path (TTFT, decoding, and the time the main agent waits on sub-agents)."""

    mean: Array
    p50: Array
    p95: Array
    ttft: Array
    decode: Array
    fanout: Array


def session_times(
    paths: Array,
    weight: Array,
    chains: Array,
    owner: Array,
    main: RequestLatency,
    sub: RequestLatency,
) -> SessionTimes:
    """Wall time of the sampled sessions on a design whose main agent's requests see ``main``
    and whose sub-agents' see ``sub`` (the same replica unless sub-agents run on another
    model). ``paths`` [SESSION_SLOTS, 5]: each session's main-agent totals; ``weight``
    [SESSION_SLOTS]: 1 for a sampled session, 0 for an empty slot; ``chains`` [FANOUT_SLOTS,
    CHAIN_SLOTS, 5]: each fan-out's sub-agent chains (all-zero slots take no time, so they
    never win the maximum); ``owner`` [FANOUT_SLOTS, SESSION_SLOTS]: 1 where a fan-out belongs
    to a session."""
    # The latencies are materialized first: without the barrier XLA fused the whole model's
    # latency computation into the elementwise sums below, recomputing it per (fan-out,
    # session) element (0.03 -> 0.4 s per 256 designs, 2-core CPU).
    main, sub = jax.lax.optimization_barrier((main, sub))
    main_total, main_ttft, main_decode = main.time(paths)
    # The slowest chain of each fan-out gates the main agent; its parts are the critical ones.
    # Only the totals are computed for every chain (the [FANOUT_SLOTS, CHAIN_SLOTS] part of the
    # cost); the parts come from the chosen chain's coefficients.
    slowest = jnp.argmax(sub.time(chains)[0], axis=-1)
    critical = jnp.take_along_axis(chains, slowest[:, None, None], axis=1)[:, 0, :]
    fan_total, fan_ttft, fan_decode = sub.time(critical)
    fan_jitter = sub.jitter(critical)
    # [FANOUT_SLOTS] -> [SESSION_SLOTS] by a product with the 0/1 owner matrix and a sum in a
    # fixed order (``ordered_sum``), not a matmul or a reduce: their rounding depends on the
    # batch size (BLAS blocking, reduce vectorization), which would make a design's metrics
    # depend on the chunk it was evaluated in.
    per_session = lambda x: ordered_sum(x[:, None] * owner, axis=0)  # noqa: E731
    total = main_total + per_session(fan_total)
    jitter = main.jitter(paths) + per_session(fan_jitter)

    n = jnp.maximum(ordered_sum(weight), 1.0)
    mean_of = lambda x: ordered_sum(weight * x) / n  # noqa: E731
    mean = mean_of(total)
    # Sample variance over the sessions (n - 1; none from a single session) plus the jitter.
    spread = ordered_sum(weight * (total - mean) ** 2) / jnp.maximum(n - 1.0, 1.0)
    wall = Spread(jnp.zeros_like(mean), mean, spread + mean_of(jitter))
    p50, p95 = (wall.quantile(z) for z in _Z)
    minutes = 1.0 / 60.0
    return SessionTimes(
        mean=mean * minutes,
        p50=p50 * minutes,
        p95=p95 * minutes,
        ttft=mean_of(main_ttft + per_session(fan_ttft)) * minutes,
        decode=mean_of(main_decode + per_session(fan_decode)) * minutes,
        fanout=mean_of(per_session(fan_total)) * minutes,
    )


# SystemMetrics' session fields, in SessionTimes' order.
SESSION_FIELDS = (
    "session_minutes",
    "session_minutes_p50",
    "session_minutes_p95",
    "session_ttft_minutes",
    "session_decode_minutes",
    "session_fanout_minutes",
)


def session_fields(profile, main: RequestLatency, sub: RequestLatency) -> dict[str, Array]:
    """``SESSION_FIELDS`` by name for a workload ``profile`` (its session fields) on a design."""
    times = session_times(
        profile.session_paths,
        profile.session_weight,
        profile.fanout_chains,
        profile.fanout_owner,
        main,
        sub,
    )
    return dict(zip(SESSION_FIELDS, times))


__all__ = [
    "CHAIN_SLOTS",
    "COEFFICIENTS",
    "FANOUT_SLOTS",
    "SESSION_FIELDS",
    "SESSION_PERCENTILES",
    "SESSION_SLOTS",
    "RequestLatency",
    "SessionTimes",
    "request_latency",
    "session_fields",
    "session_times",
]
