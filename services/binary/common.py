"""What the ELF, Mach-O and .NET readers share: a finding (heuristic, signatures, lines) and
Shannon entropy, so each reader only says what it saw."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

# heuristic ids (the manifest's)
PACKED, ODD_ENTRY, STRIPPED_STATIC, WRITE_EXECUTE, CAPABILITIES, DOTNET_API, DOTNET_OBFUSCATOR, MALFORMED = range(1, 9)


@dataclass
class Finding:
    heur_id: int
    title: str
    signatures: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def entropy(data: bytes) -> float:
    if not data:
        return 0.0
    total = len(data)
    return max(0.0, -sum(n / total * math.log2(n / total) for n in Counter(data).values()))  # never -0.0


def add(findings: dict[int, Finding], heur_id: int, title: str, signature: str, line: str) -> None:
    """Add one signature (and its line) to the finding of `heur_id`, made on first use."""
    found = findings.setdefault(heur_id, Finding(heur_id, title))
    if signature not in found.signatures:
        found.signatures.append(signature)
    found.lines.append(line)
