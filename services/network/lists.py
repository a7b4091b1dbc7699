"""The network service's rule files: brands, the operator's deny list, and the names that train
the DGA model. Bundled under rules/, replaceable through the rules updater (files by suffix:
`.brands`, `.deny`, `.names`; a kind with no file in an update keeps the bundled one).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BUNDLED = Path(__file__).resolve().parent / "rules"
CATEGORIES = ("malicious", "suspicious")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-"


def _lines(path: str | Path) -> list[str]:
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@dataclass(frozen=True)
class DenyEntry:
    value: str  # a domain, or an IP network in CIDR form
    category: str
    note: str


@dataclass
class DenyList:
    domains: dict[str, DenyEntry] = field(default_factory=dict)
    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, DenyEntry]] = field(default_factory=list)

    def domain(self, name: str) -> DenyEntry | None:
        """The entry for `name` or the nearest listed parent domain."""
        labels = name.split(".")
        return next((self.domains[".".join(labels[i:])] for i in range(len(labels)) if ".".join(labels[i:]) in self.domains), None)

    def ip(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> DenyEntry | None:
        return next((entry for net, entry in self.networks if address in net), None)


def parse_deny(path: str | Path) -> DenyList:
    deny = DenyList()
    for number, line in enumerate(_lines(path), 1):
        parts = line.split(None, 2)
        if len(parts) < 2 or parts[1] not in CATEGORIES:
            raise ValueError(f"{path}:{number}: want 'VALUE CATEGORY [note]' with CATEGORY one of {CATEGORIES}: {line!r}")
        value, category, note = parts[0].lower(), parts[1], parts[2] if len(parts) > 2 else ""
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", value):
                raise ValueError(f"{path}:{number}: {value!r} is neither an IP, a CIDR range nor a domain") from None
            deny.domains[value] = DenyEntry(value, category, note)
        else:
            deny.networks.append((net, DenyEntry(str(net), category, note)))
    return deny


def parse_brands(path: str | Path) -> dict[str, frozenset[str]]:
    """brand name -> the registrable domains that are really its own."""
    brands: dict[str, frozenset[str]] = {}
    for number, line in enumerate(_lines(path), 1):
        name, *domains = line.lower().split()
        if not re.fullmatch(r"[a-z0-9]{3,}", name) or not domains:
            raise ValueError(f"{path}:{number}: want 'brand domain [domain...]' with a brand of 3+ letters/digits: {line!r}")
        brands[name] = frozenset(domains) | brands.get(name, frozenset())
    return brands


class BigramModel:
    """Log-likelihood per character transition of a name under bigrams of chosen names.

    Names people choose follow the language's letter pairs (`go`, `oo`, `gl`); generated ones
    (`xjwqpzkv`) use rare pairs throughout. The per-transition average makes the score
    independent of length, with add-one smoothing so an unseen pair costs, not breaks.
    """

    def __init__(self, names: list[str]) -> None:
        pairs: Counter[str] = Counter()
        firsts: Counter[str] = Counter()
        for name in names:
            padded = f"^{name}$"
            for a, b in zip(padded, padded[1:], strict=False):
                pairs[a + b] += 1
                firsts[a] += 1
        size = len(_ALPHABET) + 1
        self._log = {pair: math.log((count + 1) / (firsts[pair[0]] + size)) for pair, count in pairs.items()}
        self._unseen = {a: math.log(1 / (firsts[a] + size)) for a in "^" + _ALPHABET}

    def score(self, name: str) -> float:
        padded = f"^{name}$"
        steps = [self._log.get(a + b, self._unseen.get(a, math.log(1 / 1000))) for a, b in zip(padded, padded[1:], strict=False)]
        return sum(steps) / len(steps)


def parse_names(path: str | Path) -> list[str]:
    return [w for line in _lines(path) for w in line.lower().split() if re.fullmatch(r"[a-z0-9-]+", w)]


@dataclass(frozen=True)
class Rules:
    brands: dict[str, frozenset[str]]
    deny: DenyList
    model: BigramModel


def load(paths: list[str]) -> Rules:
    """The rule set from these files, the bundled file standing in for any kind they lack."""
    by_kind: dict[str, list[str]] = {"brands": [], "deny": [], "names": []}
    for path in paths:
        suffix = Path(path).suffix.lstrip(".")
        kind = {"txt": Path(path).stem.split("_")[0]}.get(suffix, suffix)
        kind = {"common": "names"}.get(kind, kind)
        if kind not in by_kind:
            raise ValueError(f"{path}: not a .brands, .deny or .names file")
        by_kind[kind].append(path)
    bundled = {"brands": BUNDLED / "brands.txt", "deny": BUNDLED / "deny.txt", "names": BUNDLED / "common_names.txt"}
    files = {kind: found or [str(bundled[kind])] for kind, found in by_kind.items()}
    brands: dict[str, frozenset[str]] = {}
    for path in files["brands"]:
        for name, domains in parse_brands(path).items():
            brands[name] = brands.get(name, frozenset()) | domains
    deny = DenyList()
    for path in files["deny"]:
        part = parse_deny(path)
        deny.domains.update(part.domains)
        deny.networks.extend(part.networks)
    names = [n for path in files["names"] for n in parse_names(path)]
    if len(names) < 50:
        raise ValueError(f"{len(names)} names are too few to train the DGA model (want 50 or more)")
    return Rules(brands, deny, BigramModel(names))


def bundled_files() -> list[str]:
    return sorted(str(p) for p in BUNDLED.glob("*.txt"))
