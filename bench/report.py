"""The benchmark's figures: each one next to its raw nats-py counterpart, its target, and whether it is met."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Figure:
    bench: str
    metric: str
    unit: str
    ours: float
    raw: float
    target: float | None
    higher_is_better: bool

    @property
    def ratio(self) -> float:
        """ours / raw: above 1 is faster than raw for rates, heavier for times and memory."""
        return self.ours / self.raw if self.raw else float("nan")

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.ours >= self.target if self.higher_is_better else self.ours <= self.target

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def _cells(f: Figure, no: str) -> tuple[str, ...]:
    sign = "≥" if f.higher_is_better else "≤"
    target = f"{sign} {_num(f.target)} {f.unit}" if f.target is not None else ""
    met = {True: "yes", False: no, None: ""}[f.met]
    return (f.bench, f.metric, f"{_num(f.ours)} {f.unit}", f"{_num(f.raw)} {f.unit}", f"{f.ratio:.2f}" if f.raw else "n/a", target, met)


HEAD = ("benchmark", "metric", "ours", "raw nats-py", "ours/raw", "target", "met?")


def table(figures: list[Figure]) -> str:
    rows = [HEAD] + [_cells(f, "NO") for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def markdown(figures: list[Figure]) -> str:
    rows = [HEAD, ("---", "---", "---:", "---:", "---:", "---:", ":-:")] + [_cells(f, "**no**") for f in figures]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)
