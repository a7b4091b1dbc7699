"""What the wire version check costs a consumer, next to the decode it guards.

    .venv/bin/python bench/wire.py

Prints nanoseconds per call: the header check (header present, absent) and the decode of a
Task and of a Summary (schemas/examples.py), so the check's share of a message's cost is plain.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bus.codec import check_wire, decode, encode, wire_headers  # noqa: E402
from schemas.examples import EXAMPLES  # noqa: E402


def per_call_ns(stmt, number: int = 200_000) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e9


def main() -> None:
    headers = wire_headers("some-id")
    task, summary = encode(EXAMPLES["Task"]), encode(EXAMPLES["Summary"])
    task_type, summary_type = type(EXAMPLES["Task"]), type(EXAMPLES["Summary"])
    rows = [
        ("check_wire, header present", per_call_ns(lambda: check_wire(headers))),
        ("check_wire, no header (a 1.0 writer)", per_call_ns(lambda: check_wire(None))),
        (f"decode Task ({len(task)} B)", per_call_ns(lambda: decode(task, task_type), 50_000)),
        (f"decode Summary ({len(summary)} B)", per_call_ns(lambda: decode(summary, summary_type), 50_000)),
    ]
    for label, ns in rows:
        print(f"{label:<40} {ns:8.0f} ns")


if __name__ == "__main__":
    main()
