"""A rule's metadata to a heuristic level, ATT&CK ids and families.

Rules from different sources state severity differently: a numeric `score` (Sluice's and
Assemblyline's convention), a `category` (Assemblyline's rule groups: implant, tool, technique,
info) or a `severity`. The first one present decides; a rule that states none is informational,
so an unknown rule never raises a verdict on its own. An operator tunes one rule with the
manifest's `signature_score_map` (the signature is the rule name).
"""

from __future__ import annotations

INFO, SUSPICIOUS, MALICIOUS = 1, 2, 3  # heur_ids in service_manifest.yml

SCORE_THRESHOLDS = ((1000, MALICIOUS), (300, SUSPICIOUS))

WORD_LEVELS = {
    "implant": MALICIOUS, "malware": MALICIOUS, "malicious": MALICIOUS, "critical": MALICIOUS, "high": MALICIOUS,
    "exploit": SUSPICIOUS, "tool": SUSPICIOUS, "hacktool": SUSPICIOUS, "technique": SUSPICIOUS,
    "suspicious": SUSPICIOUS, "medium": SUSPICIOUS,
    "info": INFO, "informational": INFO, "low": INFO,
}


def _score(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def level(meta: dict[str, object]) -> int:
    """The heuristic a match fires, from `score`, else `category`, else `severity`."""
    score = _score(meta.get("score"))
    if score is not None:
        return next((lvl for threshold, lvl in SCORE_THRESHOLDS if score >= threshold), INFO)
    for key in ("category", "severity"):
        word = str(meta.get(key, "")).strip().lower()
        if word in WORD_LEVELS:
            return WORD_LEVELS[word]
    return INFO


def listed(meta: dict[str, object], key: str) -> list[str]:
    """A meta value that may list several items ("T1059.001, T1105"), as a list."""
    value = meta.get(key)
    if not isinstance(value, str):
        return []
    return [item.strip() for item in value.split(",") if item.strip()]
