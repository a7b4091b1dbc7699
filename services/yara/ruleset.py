"""Rule files to a compiled rule set: each file is its own namespace, named after the file.

Namespaces keep two sources' rules with the same name apart, and name the source in the tag
(`file.rule.yara` = "namespace.rule", as Assemblyline tags it).
"""

from __future__ import annotations

from pathlib import Path

import yara

BUNDLED_DIR = Path(__file__).resolve().parent / "rules"


def bundled_rule_files() -> list[str]:
    """The rule files shipped with the service, in a stable order (their hash is the tool version)."""
    return sorted(str(p) for p in BUNDLED_DIR.glob("*.yar"))


def namespaces(paths: list[str]) -> dict[str, str]:
    """namespace -> path; the file's stem, with a number added when two files share a stem."""
    named: dict[str, str] = {}
    for path in paths:
        stem = Path(path).stem
        name, n = stem, 1
        while name in named:
            n += 1
            name = f"{stem}_{n}"
        named[name] = path
    return named


def compile_rules(paths: list[str]) -> yara.Rules:
    """Compile all files together; raises yara.Error (e.g. yara.SyntaxError) on a bad file."""
    if not paths:
        raise ValueError("no rule files given: an empty rule set would silently match nothing")
    return yara.compile(filepaths=namespaces(paths))
