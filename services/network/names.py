"""What a domain name says about itself, offline: where its registrable part ends (the public
suffix list shipped in `publicsuffixlist`), which brand it dresses up as, whether a person or an
algorithm chose it.

A phishing host borrows trust in three ways: a brand's whole domain written as subdomain labels
in front of the attacker's own (`login-microsoftonline.com.secure-auth.top`), a brand's name inside
an unrelated registrable domain (`paypal-secure-login.com`), or a name that reads as the brand
(`paypa1.com`, `xn--pypal-4ve.com` for `pаypal.com` with a Cyrillic `а`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from publicsuffixlist import PublicSuffixList

from services.network.lists import Rules
from services.uri.hosts import label_concern, unicode_host

_PSL = PublicSuffixList()  # the list bundled in the wheel: no download, ever
# Characters and pairs that read as a Latin letter in a domain name.
_LOOKS_LIKE = [("rn", "m"), ("vv", "w"), ("cl", "d"), ("0", "o"), ("1", "l"), ("3", "e"), ("4", "a"), ("5", "s"),
               ("7", "t"), ("8", "b"), ("9", "g"), ("!", "i"), ("|", "l")]
PHISHING_WORDS = ("login", "logon", "signin", "sign-in", "verify", "verification", "secure", "security", "account",
                  "update", "auth", "billing", "wallet", "confirm", "unlock", "recovery", "webscr", "support", "password",
                  "validate", "suspended", "invoice", "payment")


@dataclass
class NameFacts:
    host: str
    display: str  # the Unicode form
    registrable: str  # e.g. secure-auth.top
    suffix: str  # e.g. top, co.uk
    subdomains: list[str]  # labels before the registrable domain
    findings: dict[str, list[str]] = field(default_factory=dict)  # signature -> lines

    def add(self, signature: str, line: str) -> None:
        self.findings.setdefault(signature, []).append(line)


def skeleton(token: str) -> str:
    """`token` with look-alike digits and letter pairs read as the letters they imitate."""
    for fake, real in _LOOKS_LIKE:
        token = token.replace(fake, real)
    return token


def _edit_distance_one(a: str, b: str) -> bool:
    """One substitution, insertion, deletion or swap of neighbours apart (and not equal)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _tokens(label: str) -> list[str]:
    return [t for t in re.split(r"[-_]", label) if t]


def _written_in_front(labels: list[str], subdomains: int, domain: str) -> bool:
    """`domain`'s labels among the first `subdomains` labels, the first possibly glued after a
    hyphen (`login-microsoftonline.com.` in front of the real registrable domain)."""
    parts = domain.split(".")
    for i in range(subdomains - len(parts) + 1):
        window = labels[i:i + len(parts)]
        if window == parts or [window[0].split("-")[-1], *window[1:]] == parts:
            return True
    return False


def _brand_checks(facts: NameFacts, rules: Rules) -> None:
    labels = facts.host.split(".")
    reg_name = facts.registrable[: -len(facts.suffix) - 1] if facts.suffix else facts.registrable
    # (signature, label) -> the longest brand found there: `microsoftonline` says more than `microsoft`.
    named: dict[tuple[str, str], str] = {}
    for brand, own in rules.brands.items():
        if facts.registrable in own:
            continue
        for domain in own:
            if _written_in_front(labels, len(facts.subdomains), domain):
                facts.add("brand_domain_in_subdomain", f"{domain} written in front of {facts.registrable}")
        for where, part_labels in (("subdomain", facts.subdomains), ("name", [reg_name])):
            for label in part_labels:
                compact = label.replace("-", "")
                tokens = _tokens(label)
                if brand in tokens or (len(brand) >= 5 and brand in compact):
                    key = (f"brand_in_{where}", label)
                    named[key] = max(named.get(key, ""), brand, key=len)
                    continue
                for token in tokens + ([compact] if len(tokens) > 1 else []):
                    if len(brand) >= 4 and skeleton(token) == brand:
                        facts.add("homoglyph", f"{token!r} reads as {brand!r} ({facts.registrable} is not {brand}'s)")
                    elif len(brand) >= 5 and len(token) >= 5 and _edit_distance_one(skeleton(token), brand):
                        facts.add("typosquat", f"{token!r} is one letter from {brand!r} ({facts.registrable} is not {brand}'s)")
        for label in facts.display.split("."):
            concern = label_concern(label)
            if concern and concern.looks_like and (concern.looks_like == brand or brand in _tokens(concern.looks_like)):
                facts.add("homoglyph", f"{label!r} reads as Latin {concern.looks_like!r}: {brand}")
    for (signature, label), brand in named.items():
        facts.add(signature, f"{brand!r} in {label!r} of {facts.registrable}, which is not {brand}'s")


def examine(host: str, rules: Rules) -> NameFacts:
    suffix = _PSL.publicsuffix(host) or host.rsplit(".", 1)[-1]
    registrable = _PSL.privatesuffix(host) or host
    labels = host.split(".")
    subdomains = labels[: len(labels) - len(registrable.split("."))]
    facts = NameFacts(host, unicode_host(host), registrable, suffix, subdomains)
    _brand_checks(facts, rules)
    for label in facts.display.split("."):
        concern = label_concern(label)
        if concern:
            facts.add("mixed_script" if not concern.looks_like else "confusable_script", concern.describe())
    if facts.findings and any(k.startswith(("brand", "homoglyph", "typosquat")) for k in facts.findings):
        words = sorted({w for w in PHISHING_WORDS for label in labels[:-1] if w in label})
        if words:
            facts.add("phishing_words", f"with {', '.join(words)}")
    return facts
