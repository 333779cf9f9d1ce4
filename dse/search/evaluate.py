"""Points of a :class:`~dse.search.space.Space` → SystemDesign arrays → metrics, in batches.

An :class:`Evaluator` resolves every name in the space once (system and software configs to
base design rows; hardware, host, speculation and dtype names to floats), so turning a batch of
points into design arrays is pure numpy gathering, and the model runs in one compiled call of a
fixed shape (batches are padded to a multiple of ``chunk``: one compilation per study).

Every engine goes through it: exhaustive chunks, Optuna's asked batches, gradient refinement
starts and the tables written to ``results/``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..model.design import DTYPE_BITS
from ..model.speculation import SPEC_METHODS
from ..model.system_design import SYSTEM_FIELDS
from ..stack import Stack
from ..stack.api import metrics_frame
from ..values import number
from .space import Space

CATEGORICAL = ("system", "software")
# The first evaluate call of a study compiles the model (tens of seconds cold; JAX's persistent
# cache, dse.configure, makes later processes fast): the phase shown around it.
COMPILE_PHASE = "compiling the system model (first run only; cached after)"
HARDWARE_FIELDS = ("decode_hw", "prefill_hw", "ffn_hw")
DTYPE_FIELDS = ("weight_bits", "act_bits", "kv_bits")


class Evaluator:
    """A space bound to a model and a :class:`Stack`: resolves, evaluates, tabulates."""

    def __init__(self, stack: Stack, model: str, space: Space, chunk: int = 1 << 13):
        unknown = set(space.fields) - set(SYSTEM_FIELDS) - set(CATEGORICAL)
        if unknown:
            raise ValueError(
                f"space: unknown field(s) {sorted(unknown)}; use system, software or a design "
                f"field ({', '.join(SYSTEM_FIELDS)})"
            )
        self.stack, self.model, self.space, self.chunk = stack, model, space, int(chunk)
        self._warm = False  # evaluated once: the compiled call exists
        pairs = sorted(
            {
                (s, w)
                for p in space.products
                for s, w in itertools.product(
                    _choices(p, "system", ("vr200_nvl72",)), _choices(p, "software", ("default",))
                )
            }
        )
        self.pairs = pairs
        self.pair_index = {pair: i for i, pair in enumerate(pairs)}
        systems = sorted({s for s, _ in pairs})
        self.pair_system = np.array([systems.index(s) for s, _ in pairs])  # system id per pair
        self.base = np.array(
            [[stack.design_values(model, s, w)[f] for f in SYSTEM_FIELDS] for s, w in pairs]
        )
        # Per product: float value of every choice of every numeric field.
        self.resolved = [
            {f: np.array([self._float(f, v) for v in c]) for f, c in zip(p.fields, p.choices)
             if f not in CATEGORICAL}
            for p in space.products
        ]  # fmt: skip

    def _float(self, field: str, value) -> float:
        if isinstance(value, str):
            table = (
                self.stack.hw_index if field in HARDWARE_FIELDS
                else self.stack.host_index if field == "host"
                else {m: float(i) for i, m in enumerate(SPEC_METHODS)} if field == "spec_method"
                else DTYPE_BITS if field in DTYPE_FIELDS
                else {}
            )  # fmt: skip
            if value not in table:
                known = ", ".join(map(str, table)) or "a number"
                raise ValueError(f"space.{field}: {value!r} is not one of {known}")
            return float(table[value])
        return number(f"space.{field}", value)

    # -- points -> design columns --------------------------------------------------------------
    def columns(self, product: np.ndarray, idx: dict[str, np.ndarray],
                overrides: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
        """Design field arrays for points given by product and per-field choice indices
        (-1 or absent: the base value); ``overrides`` are float arrays (continuous values)."""
        n = len(product)
        pair = np.zeros(n, dtype=np.int64)
        out = {f: np.zeros(n) for f in SYSTEM_FIELDS}
        for k, p in enumerate(self.space.products):
            rows = np.nonzero(product == k)[0]
            if not len(rows):
                continue
            systems = _choices(p, "system", ("vr200_nvl72",))
            softwares = _choices(p, "software", ("default",))
            s_idx = idx["system"][rows] if "system" in p.fields else np.zeros(len(rows), int)
            w_idx = idx["software"][rows] if "software" in p.fields else np.zeros(len(rows), int)
            lookup = np.array([[self.pair_index[(s, w)] for w in softwares] for s in systems])
            pair[rows] = lookup[s_idx, w_idx]
            for j, f in enumerate(SYSTEM_FIELDS):
                out[f][rows] = self.base[pair[rows], j]
            for f, values in self.resolved[k].items():
                out[f][rows] = values[idx[f][rows]]
        for f, v in (overrides or {}).items():
            out[f] = np.asarray(v, dtype=np.float64)
        out["_pair"] = pair
        return out

    def decode(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Design columns of global point ids."""
        product, local = self.space.locate(ids)
        idx = {f: np.zeros(len(ids), np.int64) for f in self.space.fields}
        for k, p in enumerate(self.space.products):
            rows = np.nonzero(product == k)[0]
            for f, v in p.indices(local[rows]).items():
                idx[f][rows] = v
        return self.columns(product, idx)

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, cols: dict[str, np.ndarray], progress=None) -> dict[str, np.ndarray]:
        """SystemMetrics arrays for design columns (run in pieces of one compiled shape,
        ``dse.model.batched.PIECE``).
        With a sub-agent model, sub-agent requests run on a replica with that model and a
        session pays for both (``Stack.evaluate_arrays``). ``progress`` (a
        :class:`dse.progress.Progress`): the first call, where JAX compiles, shows as a phase."""
        if progress is None or self._warm:
            return self._evaluate(cols)
        with progress.phase(COMPILE_PHASE):
            return self._evaluate(cols)

    def _evaluate(self, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        metrics = self.stack.evaluate_arrays(cols)
        self._warm = True
        return metrics

    # -- tables ---------------------------------------------------------------------------------
    def frame(self, cols: dict[str, np.ndarray], metrics: dict[str, np.ndarray]) -> pd.DataFrame:
        """A readable table: names for configs and hardware, design fields, metrics."""
        pair = cols["_pair"]
        st = self.stack
        names = pd.DataFrame(
            {
                "model": self.model,
                "system": [self.pairs[i][0] for i in pair],
                "software": [self.pairs[i][1] for i in pair],
                "decode_hardware": [st.hw_names[int(v)] for v in cols["decode_hw"]],
                "prefill_hardware": [st.hw_names[int(v)] for v in cols["prefill_hw"]],
                "ffn_hardware": [st.hw_names[int(v)] for v in cols["ffn_hw"]],
                "host_tier": [st.host_names[int(v)] for v in cols["host"]],
                "spec": [SPEC_METHODS[int(v)] for v in cols["spec_method"]],
            }
        )
        design = pd.DataFrame({f: cols[f] for f in SYSTEM_FIELDS if f != "model"})
        return pd.concat([names, design, metrics_frame(metrics)], axis=1)


def _choices(product, field: str, default: tuple) -> tuple:
    return dict(zip(product.fields, product.choices)).get(field, default)
