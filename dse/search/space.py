"""A discrete design space: a named list of choices per field, enumerated without materializing.

Point ``i`` of the space is decoded in mixed radix (the last field varies fastest), so a sweep
walks ``range(size)`` in fixed-size chunks and never holds the whole product in memory. Fields
are SystemDesign field names or the categorical ``system`` / ``software`` config names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CATEGORICAL = ("system", "software")


@dataclass(frozen=True)
class Space:
    fields: tuple[str, ...]
    choices: tuple[tuple, ...]

    @classmethod
    def from_mapping(cls, mapping: dict) -> Space:
        if not mapping:
            raise ValueError("the space is empty; give at least one field with a list of values")
        fields, choices = [], []
        for name, values in mapping.items():
            values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
            if not values:
                raise ValueError(f"space field {name!r} has no values")
            fields.append(str(name))
            choices.append(values)
        return cls(tuple(fields), tuple(choices))

    @property
    def size(self) -> int:
        return math.prod(len(c) for c in self.choices)

    def indices(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Choice index per field for the points ``ids`` (mixed radix, last field fastest)."""
        ids = np.asarray(ids, dtype=np.int64)
        out = {}
        for name, values in zip(reversed(self.fields), reversed(self.choices)):
            out[name] = ids % len(values)
            ids = ids // len(values)
        return {f: out[f] for f in self.fields}

    def point(self, i: int) -> dict:
        """The field values of point ``i``."""
        idx = self.indices(np.array([i]))
        return {f: c[int(idx[f][0])] for f, c in zip(self.fields, self.choices)}
