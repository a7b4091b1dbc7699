"""The code examples of the three service guides in `../shared/seeds/`, read at test time so the
tests cannot drift from the guides, with their imports pointed at Sluice's SDK.

Each guide writes code its own way: the AL4 guide in fenced blocks inside indented admonitions,
the AL3 tutorial in 4-space indented Markdown blocks, the MASS tutorial in reStructuredText
`.. code-block::` directives. `Guide.block(marker)` finds the one block containing `marker`.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"
AL3, AL4, MASS = "000_17e34ab532232396.txt", "001_c221179fb73d3818.txt", "004_baba469138249c06.txt"

# Module paths of the originals and where the same names live in Sluice: the only change a
# guide's code gets (plus the plain bugs each test names).
IMPORTS = {
    "assemblyline_v4_service.updater.updater": "services.sdk.al4_updater",
    "assemblyline.odm.models.signature": "services.sdk.al4_updater",
    "assemblyline_v4_service.common": "services.sdk",
    "assemblyline.al.service.base": "services.sdk.al3",
    "assemblyline.al.common.result": "services.sdk.al3",
    "assemblyline.common.timeout": "services.sdk.al3",
    "assemblyline.common.reaper": "services.sdk.al3",
    "mass_client": "services.sdk.mass",
}
_IMPORT_LINE = re.compile(r"^(\s*from\s+)([\w.]+)(\s+import\s)", re.MULTILINE)


def swap_imports(code: str) -> str:
    """Point every `from MODULE import` line at Sluice's module for it; nothing else changes."""
    def swap(match: re.Match) -> str:
        module = match.group(2)
        for original, ours in IMPORTS.items():
            if module == original or module.startswith(original + "."):
                return f"{match.group(1)}{ours}{module[len(original):]}{match.group(3)}"
        return match.group(0)
    return _IMPORT_LINE.sub(swap, code)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def fenced_blocks(text: str) -> list[str]:
    """```-fenced blocks, also inside indented admonitions. A block ends at its closing fence or
    at the first line indented less than its fence (the AL4 guide leaves update_server.py's
    fence open)."""
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        if lines[i].strip().startswith("```") and lines[i].strip() != "```":
            fence, body, i = _indent(lines[i]), [], i + 1
            while i < len(lines) and lines[i].strip() != "```" and (not lines[i].strip() or _indent(lines[i]) >= fence):
                body.append(lines[i])
                i += 1
            blocks.append(textwrap.dedent("\n".join(body)).strip("\n") + "\n")
        i += 1
    return blocks


def indented_blocks(text: str) -> list[str]:
    """Markdown code blocks: runs of lines indented by 4 or more spaces after a blank line."""
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        if _indent(lines[i]) >= 4 and lines[i].strip() and (i == 0 or not lines[i - 1].strip()):
            body = []
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) >= 4):
                body.append(lines[i])
                i += 1
            blocks.append(textwrap.dedent("\n".join(body)).strip("\n") + "\n")
        else:
            i += 1
    return blocks


def rst_blocks(text: str) -> list[str]:
    """reStructuredText `.. code-block:: LANG` bodies."""
    lines, blocks = text.splitlines(), []
    for i, line in enumerate(lines):
        if line.strip().startswith(".. code-block::"):
            j, body = i + 1, []
            while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > _indent(line)):
                body.append(lines[j])
                j += 1
            blocks.append(textwrap.dedent("\n".join(body)).strip("\n") + "\n")
    return blocks


@dataclass
class Guide:
    blocks: list[str]

    def block(self, *markers: str) -> str:
        found = [b for b in self.blocks if all(m in b for m in markers)]
        assert len(found) == 1, f"expected one code block with {markers} in the guide, found {len(found)}"
        return found[0]


def guide(name: str) -> Guide:
    text = (SEEDS / name).read_text()
    if name == AL4:
        return Guide(fenced_blocks(text))
    if name == MASS:
        return Guide(rst_blocks(text))
    return Guide(indented_blocks(text))
