"""One YARA match as a result section: what the rule says about itself, and what it matched."""

from __future__ import annotations

import yara

from services.sdk import ResultKeyValueSection, ResultTableSection
from services.yara.scoring import level, listed

PREVIEW_BYTES = 48


def preview(data: bytes) -> str:
    """A short, escaped view of matched bytes: safe to show, whatever the bytes are."""
    text = repr(data[:PREVIEW_BYTES])[2:-1]
    return text + "…" if len(data) > PREVIEW_BYTES else text


def strings_section(match: yara.Match, cap: int) -> ResultTableSection | None:
    """The first `cap` string hits of the rule (identifier, offset, bytes); the title says if cut."""
    hits = [(s.identifier, i) for s in match.strings for i in s.instances]
    if not hits:
        return None
    shown = sorted(hits, key=lambda hit: hit[1].offset)[:cap]
    title = "Matched strings" if len(hits) <= cap else f"Matched strings (first {cap} of {len(hits)})"
    rows = [{"identifier": ident, "offset": f"0x{inst.offset:x}", "data": preview(inst.matched_data)}
            for ident, inst in shown]
    return ResultTableSection(title, rows)


def match_section(match: yara.Match, max_strings: int) -> ResultKeyValueSection:
    """Title "Rule: NAME"; body: namespace, rule tags and meta; heuristic from the meta."""
    body: dict[str, object] = {"namespace": match.namespace}
    if match.tags:
        body["rule tags"] = ", ".join(match.tags)
    for key, value in match.meta.items():
        body.setdefault(key, value)
    section = ResultKeyValueSection(f"Rule: {match.rule}", body)
    attacks = listed(match.meta, "attack_id")
    section.set_heuristic(level(match.meta), attack_id=attacks[0] if attacks else None, signature=match.rule)
    for attack in attacks[1:]:
        section.set_heuristic(section.heur_id, attack_id=attack)
    section.add_tag("file.rule.yara", f"{match.namespace}.{match.rule}")
    for family in listed(match.meta, "family"):
        section.add_tag("attribution.family", family)
    strings = strings_section(match, max_strings)
    if strings is not None:
        section.add_subsection(strings)
    return section
