"""Turn the rows the fault suite recorded into the Markdown table for the README.

    SLUICE_FAULT_TABLE=/tmp/faults.jsonl .venv/bin/python -m pytest tests/test_faults.py tests/test_cluster.py
    .venv/bin/python tests/fault_table.py /tmp/faults.jsonl > faults-table.md

Columns are the counts each test measured, the time from its first submission to its last
summary, and its notes (peak memory, resume time, errors recorded, ...). The last row recorded
for a fault wins, so reruns do not pile up.
"""

from __future__ import annotations

import json
import sys

COLUMNS = ("fault", "sent", "completed", "lost", "duplicated", "seconds", "notes")


def table(lines: list[str]) -> str:
    rows = {}
    for line in lines:
        if line.strip():
            row = json.loads(line)
            rows[row["fault"]] = row
    out = ["| fault | sent | completed | lost | duplicated | time (s) | what else was measured |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for row in rows.values():
        out.append("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.stdout.write(table(f.readlines()))
