"""A workload reduced to the numbers the serving model consumes, as a JAX pytree.

:class:`WorkloadProfile` holds float64 arrays only (no static fields), so profiles stack and
``vmap`` like any design parameter. Means are per LLM request unless a field says otherwise;
"unlimited cache" means no capacity limit but the prompt-cache TTL still applies.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from dse.jax_config import configure
from dse.model.workload import WorkloadProfile
from dse.workload.cache import hit_curve, request_reuse
from dse.workload.params import SessionParams
from dse.workload.population import simulate_population
from dse.workload.presets import load_preset
from dse.workload.structure import session_structure
from dse.workload.trace import load_mooncake


def _sessions(df: pd.DataFrame) -> np.ndarray:
    """Session index per request: the ``session`` column; one session for a single generated
    session (has ``agent``); else (traces without session ids) every request its own session."""
    if "session" in df:
        return pd.factorize(df["session"])[0]
    if "agent" in df:
        return np.zeros(len(df), dtype=np.int64)
    return np.arange(len(df))


def _agents_in_flight(df: pd.DataFrame, session: np.ndarray) -> float:
    """Request-seconds over seconds with at least one request of the session in flight."""
    if "duration_s" not in df:
        return 1.0
    t0 = df["t_start_s"].to_numpy(dtype=np.float64)
    dur = df["duration_s"].to_numpy(dtype=np.float64)
    t = np.concatenate([t0, t0 + dur])
    delta = np.concatenate([np.ones_like(t0), -np.ones_like(t0)])
    s = np.concatenate([session, session])
    order = np.lexsort((delta, t, s))  # per session by time; ends before starts at ties
    t, delta, s = t[order], delta[order], s[order]
    in_flight = np.cumsum(delta)[:-1]
    dt = np.where(s[1:] == s[:-1], np.diff(t), 0.0)
    busy = float(np.sum(dt * (in_flight > 0)))
    return max(1.0, float(dur.sum() / busy)) if busy > 0 else 1.0  # >= 1 up to rounding


def _f64(x) -> jax.Array:
    return jnp.asarray(np.asarray(x, dtype=np.float64))


def build_profile(
    requests: pd.DataFrame,
    params: SessionParams | None,
    ttl_s: float,
    request_rate: float | None = None,
) -> WorkloadProfile:
    """Profile of a request table (generated sessions, a population or a Mooncake trace).

    ``params`` supplies the speculative acceptance (defaults when None); ``ttl_s`` the prompt
    cache TTL; ``request_rate`` (requests/s) normalises the cache grid (default: the table's).
    """
    configure()
    p = params if params is not None else SessionParams()
    inp = requests["input_tokens"].to_numpy(dtype=np.float64)
    out = requests["output_tokens"].to_numpy(dtype=np.float64)
    new = _new_tokens(requests, ttl_s)
    prefix = inp - new
    session = _sessions(requests)
    n_sessions = int(session.max()) + 1
    if "gap_s" in requests and requests["gap_s"].notna().any():
        gap = float(np.nanmean(requests["gap_s"].to_numpy(dtype=np.float64)))
    else:
        gap = 0.0  # traces carry no agent identity
    sub = np.zeros(len(inp), dtype=bool)
    if "agent" in requests:
        sub = (requests["agent"] == "sub").to_numpy()
    grid, curve = hit_curve(requests, ttl_s, request_rate)
    return WorkloadProfile(
        input_tokens=_f64(inp.mean()),
        output_tokens=_f64(out.mean()),
        new_tokens=_f64(new.mean()),
        reusable_fraction=_f64(prefix.sum() / inp.sum()),
        prefill_past=_f64(np.sum(new * prefix) / max(new.sum(), 1.0)),
        decode_context=_f64(np.sum(out * (inp + out / 2)) / max(out.sum(), 1.0)),
        max_context=_f64(np.percentile(inp + out, 99)),
        new_tokens_cv=_f64(new.std() / max(new.mean(), 1.0)),
        output_cv=_f64(out.std() / max(out.mean(), 1.0)),
        gap_s=_f64(gap),
        requests_per_session=_f64(len(inp) / n_sessions),
        session_input_tokens=_f64(inp.sum() / n_sessions),
        session_output_tokens=_f64(out.sum() / n_sessions),
        agents_in_flight=_f64(_agents_in_flight(requests, session)),
        sub_agent_input_fraction=_f64(inp[sub].sum() / inp.sum()),
        sub_agent_output_fraction=_f64(out[sub].sum() / max(out.sum(), 1.0)),
        spec_acceptance=_f64(
            [p.spec_acceptance_mtp, p.spec_acceptance_draft, p.spec_acceptance_ngram]
        ),
        cache_grid=_f64(grid),
        hit_curve=_f64(curve),
        **_session_fields(requests, new, session),
    )


def _new_tokens(requests: pd.DataFrame, ttl_s: float) -> np.ndarray:
    """Uncached prompt tokens per request: its input less the prefix reused within the TTL."""
    prefix = request_reuse(requests, ttl_s).per_request().astype(np.float64)
    return requests["input_tokens"].to_numpy(dtype=np.float64) - prefix


def _session_fields(requests: pd.DataFrame, new: np.ndarray, session: np.ndarray) -> dict:
    return {k: _f64(v) for k, v in session_structure(requests, new, session).items()}


def profile_for(
    preset: str,
    sessions: int = 64,
    seed: int = 0,
    concurrency: float = 16.0,
    conf_dir=None,
) -> WorkloadProfile:
    """Simulate a population of a preset (``conf/workload/<preset>.yaml``) and profile it."""
    params = load_preset(preset, conf_dir)
    df = simulate_population(params, sessions, concurrency, np.random.default_rng(seed))
    return build_profile(df, params, params.prompt_cache_ttl_s)


def split_profiles(
    params: SessionParams, sessions: int = 64, seed: int = 0, concurrency: float = 16.0
) -> tuple[WorkloadProfile, WorkloadProfile]:
    """(main-agent, sub-agent) profiles of one simulated population, for serving sub-agents on
    another model (the seed: sub-agents "can also run on smaller models"). Requests per session
    count every session of the population, including those that spawned no sub-agent; both
    carry the whole sessions' critical paths."""
    df = simulate_population(params, sessions, concurrency, np.random.default_rng(seed))
    n_sessions = int(df["session"].nunique())
    # Both replicas carry the whole sessions' critical paths (``with_sub_agents`` prices them).
    whole = _session_fields(df, _new_tokens(df, params.prompt_cache_ttl_s), _sessions(df))
    names = list(whole)
    out = []
    for agent in ("main", "sub"):
        part = df[df["agent"] == agent]
        prof = build_profile(part, params, params.prompt_cache_ttl_s)
        per_session = _f64(len(part) / n_sessions)
        prof = eqx.tree_at(lambda p: p.requests_per_session, prof, per_session)
        prof = eqx.tree_at(lambda p: [getattr(p, n) for n in names], prof, list(whole.values()))
        out.append(prof)
    return out[0], out[1]


def trace_profile(path, like: str = "chat", ttl_s: float | None = None) -> WorkloadProfile:
    """Profile of a Mooncake trace (name or path); speculative acceptance and, unless given,
    the TTL come from the preset ``like`` (Mooncake conversation is chat traffic)."""
    params = load_preset(like)
    ttl = params.prompt_cache_ttl_s if ttl_s is None else float(ttl_s)
    return build_profile(load_mooncake(path), params, ttl)


def stack_profiles(profiles: list[WorkloadProfile]) -> WorkloadProfile:
    """One profile whose leaves have a leading axis over ``profiles`` (for ``jax.vmap``)."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *profiles)
