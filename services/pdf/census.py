"""A pdfid-style census: how often each risky name occurs in the raw bytes of a PDF.

It reads no structure, so it still counts in a PDF too broken for a parser; it cannot see into
compressed object streams (which is why /ObjStm itself is counted). A name may spell any
character as #xx (`/J#61vaScript` is `/JavaScript`): counted under its real name, and also as
obfuscated, since no honest PDF writer spells these names that way.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

KEYWORDS = (
    "/JS", "/JavaScript", "/OpenAction", "/AA", "/Launch", "/EmbeddedFile", "/EmbeddedFiles",
    "/AcroForm", "/XFA", "/RichMedia", "/ObjStm", "/Encrypt", "/URI", "/SubmitForm", "/GoToR",
    "/JBIG2Decode",
)
KNOWN = frozenset(KEYWORDS)
# A name: "/" then regular characters, up to whitespace or a delimiter (ISO 32000-1, 7.2.2).
NAME_RE = re.compile(rb"/[^\x00\t\n\x0c\r ()<>\[\]{}/%]*")
HEX_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")


def normalise(name: bytes) -> str:
    """The name with its #xx escapes decoded, as a reader sees it."""
    return HEX_ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), name).decode("latin-1")


@dataclass
class Census:
    counts: Counter[str] = field(default_factory=Counter)
    obfuscated: Counter[str] = field(default_factory=Counter)
    spellings: dict[str, set[str]] = field(default_factory=dict)  # keyword → its escaped spellings

    def __getitem__(self, keyword: str) -> int:
        return self.counts[keyword]

    def any(self, *keywords: str) -> bool:
        return any(self.counts[k] for k in keywords)


def take_census(data: bytes) -> Census:
    census = Census()
    for raw, count in Counter(NAME_RE.findall(data)).items():
        escaped = b"#" in raw
        name = normalise(raw) if escaped else raw.decode("latin-1")
        if name not in KNOWN:
            continue
        census.counts[name] += count
        if escaped:
            census.obfuscated[name] += count
            census.spellings.setdefault(name, set()).add(raw.decode("latin-1"))
    return census
