"""The one number validator. A value from a config file, a command-line override, a search
space or a table cell becomes a float, or one line that says what is wrong, where, and how to
fix it. Every layer that reads numbers from a person calls :func:`number`, so the same mistake
reads the same wherever it is made."""

from __future__ import annotations

import math
import numbers


def number(
    where: str,
    value,
    *,
    minimum: float = 0.0,
    maximum: float = math.inf,
    integer: bool = False,
    blank_ok: bool = False,
    text_ok: bool = True,
    why: str = "",
) -> float:
    """``value`` as a float in ``[minimum, maximum]`` (a whole number with ``integer``), else a
    ``ValueError`` naming ``where`` (``column tp``, ``software.batch``, ``conf/cost/x.yaml:
    gpu_usd``).

    ``blank_ok``: the fix may be to leave the cell blank (the caller handles blanks itself).
    ``text_ok=False``: text such as ``'2'`` is refused even when it parses (a quoted number in
    a YAML list is a typo worth pointing at). ``why``: what the number counts, added to the
    whole-number message. ``True``/``False`` are never numbers, although Python says so."""
    blank = " or leave it blank" if blank_ok else ""
    kind_ok = isinstance(value, numbers.Real) or (text_ok and isinstance(value, str))
    try:
        if isinstance(value, bool) or not kind_ok:
            raise ValueError
        x = float(value)
    except ValueError:
        raise ValueError(
            f"{where}={value!r} is not a number; write a plain number{blank}"
        ) from None
    if not math.isfinite(x):
        raise ValueError(f"{where}={value!r} is not finite; write a finite number{blank}")
    if integer and x != int(x):
        because = f"; {why}" if why else " (it counts something)"
        raise ValueError(f"{where}={x:g} must be a whole number{because}")
    if x < minimum:
        raise ValueError(f"{where}={x:g} is below {minimum:g}; use a value >= {minimum:g}")
    if x > maximum:
        raise ValueError(f"{where}={x:g} is above {maximum:g}; use a value <= {maximum:g}")
    return x


def count(where: str, value, *, minimum: int = 1, maximum: float = math.inf, why: str = "") -> int:
    """``value`` as an ``int`` >= ``minimum`` (a count of trials, workers, GPUs): :func:`number`
    with ``integer=True``."""
    return int(number(where, value, minimum=minimum, maximum=maximum, integer=True, why=why))
