"""Parameters of the session generator (one frozen dataclass; defaults = the agentic_coding preset).

Every field is set, with a source, in each ``conf/workload/<preset>.yaml``; the defaults mirror
``agentic_coding.yaml`` (the seed Claude Code session) so ``SessionParams()`` is that preset.
Fields added for the other presets default to values that leave the seed session's random
stream untouched (no human turns, no extra draws).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields

from dse.model.session_time import CHAIN_SLOTS

_META_KEYS = {"sources", "title", "description"}


@dataclass(frozen=True)
class SessionParams:
    # main agent
    main_turns: int = 58
    initial_context: float = 15_000.0
    append_median: float = 1_150.0  # tool output / file re-reads per main turn (lognormal)
    append_sigma: float = 0.8
    explore_turns: int = 6  # opening turns read the repo: larger appends
    explore_append_median: float = 4_000.0
    output_median: float = 200.0  # output tokens per call (lognormal, all agents)
    output_sigma: float = 1.34
    compaction_threshold: float = 155_000.0
    compaction_summary: float = 20_000.0  # context right after compaction (baseline + summary)
    # human turns: a main turn follows a user message with probability user_turn_prob (else a
    # tool result); at most max_tool_turns tool turns in a row (0 = unbounded)
    user_turn_prob: float = 0.0
    max_tool_turns: int = 0
    user_append_median: float = 150.0  # user message tokens (lognormal)
    user_append_sigma: float = 1.8
    think_gap_median_s: float = 86.0  # human think time before a user turn (lognormal, clipped)
    think_gap_sigma: float = 2.2
    think_gap_max_s: float = 3_600.0
    # sub-agents
    sub_spawn_prob: float = 0.155
    sub_count_min: int = 3
    sub_count_max: int = 3
    sub_turns_min: int = 6
    sub_turns_max: int = 11
    sub_initial_context: float = 15_000.0
    sub_output_median: float = 110.0  # sub-agent calls are mostly tool calls (same sigma)
    sub_append_median: float = 875.0
    sub_append_sigma: float = 0.8
    sub_return_tokens: float = 1_500.0  # summary a sub-agent hands back to the main context
    sub_agent_model: str | None = None  # None: the main agent's model; else a catalog model name
    # timing
    ttft_s: float = 1.0
    decode_tok_s: float = 40.7
    tool_gap_median_s: float = 0.3
    tool_gap_sigma: float = 2.0
    # serving-side properties of the workload
    prompt_cache_ttl_s: float = 300.0  # idle time after which a cached prefix is dropped
    spec_acceptance_mtp: float = 0.90  # per-token acceptance alpha of an MTP head
    spec_acceptance_draft: float = 0.821  # ... of a separate draft model (EAGLE-style)
    spec_acceptance_ngram: float = 0.741  # ... of n-gram / suffix drafting over the context

    def __post_init__(self):
        if self.main_turns < 1:
            raise ValueError("main_turns must be >= 1")
        for name in ("sub_spawn_prob", "user_turn_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.sub_count_min > self.sub_count_max or self.sub_turns_min > self.sub_turns_max:
            raise ValueError("min > max in sub-agent counts")
        if self.sub_count_max > CHAIN_SLOTS:
            raise ValueError(
                f"sub_count_max {self.sub_count_max}: the session model holds at most "
                f"{CHAIN_SLOTS} parallel sub-agents per fan-out (dse.model.session_time)"
            )
        if self.compaction_summary >= self.compaction_threshold:
            raise ValueError("compaction_summary must be below compaction_threshold")
        if self.max_tool_turns < 0 or self.prompt_cache_ttl_s < 0:
            raise ValueError("max_tool_turns and prompt_cache_ttl_s must be >= 0")
        for name in ("spec_acceptance_mtp", "spec_acceptance_draft", "spec_acceptance_ngram"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
        if self.sub_agent_model is not None and not isinstance(self.sub_agent_model, str):
            raise ValueError("sub_agent_model must be a model name or null")

    @classmethod
    def from_dict(cls, d: dict) -> SessionParams:
        """Build from a preset mapping; unknown keys are an error with a did-you-mean hint."""
        names = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(names) - _META_KEYS)
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, sorted(names), n=1, cutoff=0.6)
                hints.append(f"{k!r} (did you mean {close[0]!r}?)" if close else repr(k))
            raise ValueError(f"unknown SessionParams fields: {', '.join(hints)}")
        kw = {}
        for k, v in d.items():
            if k not in names:
                continue
            kind = names[k].type
            if kind in ("int", int):
                kw[k] = int(v)
            elif kind in ("float", float):
                kw[k] = float(v)
            else:
                kw[k] = None if v is None else str(v)
        return cls(**kw)
