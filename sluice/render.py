"""Summaries as terminal output and as JSON: pure functions, no I/O.

Everything shown here comes from files and services, so it is hostile by default: file names
come out of archives, section titles and bodies out of analysed content. Text is therefore only
ever put into `rich.text.Text` objects (never parsed as console markup) and control characters
are made visible first, so neither `[bold]` nor an ANSI escape in a sample reaches the terminal
as formatting.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from schemas.messages import FileNode, ResultView, Section, ServiceError, Summary
from schemas.samples import kind_of_type
from sluice.section_text import body_lines

__all__ = ["VERDICT_STYLES", "clean", "plain", "to_json", "summary_tree", "node_tree", "summary_line"]

VERDICT_STYLES = {
    "safe": "green",
    "info": "dim",
    "suspicious": "yellow",
    "highly_suspicious": "dark_orange",
    "malicious": "bold red",
}
BODY_LINES = 4  # a section body is a preview here; --json has it whole
LINE_WIDTH = 160
TAG_VALUES = 6  # values shown per tag name before "+N more"

# C0 controls except tab/newline, DEL and C1 controls: anything a terminal may act on.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: object) -> str:
    """`value` as text with terminal control characters shown as `\\xNN` instead of obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def _text(value: object, style: str = "") -> Text:
    """Cleaned text, styled as a span (not a base style, which would spill onto whatever is appended)."""
    return Text.assemble((clean(value), style))


# -- JSON ----------------------------------------------------------------------------------------

def plain(obj: Any) -> Any:
    """Builtins with every field present.

    The wire Structs use `omit_defaults` to keep messages small, so encoding them directly would
    drop `score: 0`, `results: []` or `children: []`; JSON consumers want a stable shape instead.
    """
    if isinstance(obj, msgspec.Struct):
        return {name: plain(getattr(obj, name)) for name in obj.__struct_fields__}
    if isinstance(obj, (list, tuple)):
        return [plain(item) for item in obj]
    if isinstance(obj, dict):
        return {key: plain(item) for key, item in obj.items()}
    return obj


def to_json(obj: Any) -> str:
    """One JSON document on one line (JSON Lines), every field present."""
    return msgspec.json.encode(plain(obj)).decode()


# -- pieces ------------------------------------------------------------------------------------

def verdict_text(verdict: str) -> Text:
    return _text(verdict, VERDICT_STYLES.get(verdict, "bold"))


def _score_style(score: int) -> str:
    if score >= 1000:
        return "bold red"
    if score >= 700:
        return "dark_orange"
    if score >= 300:
        return "yellow"
    return "green" if score < 0 else "dim"


def _body_lines(section: Section) -> list[str]:
    """The body as display lines, by its format (sluice/section_text.py)."""
    return body_lines(section.body_format, section.body, section.body_config)


def _trim(lines: list[str], limit: int = BODY_LINES) -> list[str]:
    shown = [line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 1] + "…" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"… {len(lines) - limit} more lines")
    return shown


def _tag_lines(section: Section) -> list[Text]:
    """Tags grouped by name, one line per name: `network.static.uri: a, b, +3 more`."""
    grouped: dict[str, list[str]] = {}
    for tag in section.tags:
        grouped.setdefault(tag.name, []).append(tag.value)
    lines = []
    for name, values in grouped.items():
        line = _text(name, "cyan") + Text(": ") + _text(", ".join(values[:TAG_VALUES]))
        if len(values) > TAG_VALUES:
            line.append(f", +{len(values) - TAG_VALUES} more", style="dim")
        lines.append(line)
    return lines


def _body_preview(section: Section, expand: bool) -> list[Text]:
    """Every body line, whole, with `expand`; else the first few, or for a longer section its
    service folds (auto_collapse: e.g. the PE import list) only how many lines it holds."""
    lines = _body_lines(section)
    if expand:
        return [_text(line, "dim") for line in lines]
    if section.auto_collapse and len(lines) > BODY_LINES:
        return [Text(f"… {len(lines)} lines folded (--expand shows them; --json has them)", style="dim")]
    return [_text(line, "dim") for line in _trim(lines)]


def section_label(section: Section, service: str = "", expand: bool = False) -> RenderableType:
    """Title (with its service), heuristic name and score, tags, and the first body lines (all with `expand`)."""
    head = Text()
    if service:
        head.append_text(_text(service, "bold blue")).append(": ")
    head.append_text(_text(section.title, "bold"))
    if section.heuristic:
        hit = section.heuristic
        head.append("  [").append_text(_text(hit.name))
        head.append(f" {hit.score:+d}", style=_score_style(hit.score))
        if hit.attack_ids:  # ATT&CK techniques, from the manifest or the section
            head.append(" " + " ".join(hit.attack_ids[:4]), style="magenta")
        head.append("]")
    lines: list[RenderableType] = [head, *_tag_lines(section)]
    lines += _body_preview(section, expand)
    return Group(*lines) if len(lines) > 1 else head


def error_label(error: ServiceError) -> Text:
    kind = getattr(error.type, "value", error.type)
    return _text("error ", "bold red") + _text(f"{error.service} {kind}: {error.message}", "red")


def node_label(node: FileNode) -> Text:
    """`name  type  score`, with the relation for a child (`retrieved-by  https://…  uri/https  0`)
    and flags that change how to read it. A URI's, domain's or IP's type says its kind; where it
    cannot (a malformed sample is `unknown`), the kind is a flag."""
    label = Text()
    if node.depth > 0:
        label.append_text(_text(node.relation, "dim")).append("  ")
    label.append_text(_text(node.name or node.sha256[:16], "bold"))
    label.append("  ").append_text(_text(node.type, "cyan"))
    label.append(f"  {node.score}", style=_score_style(node.score))
    if kind_of_type(node.type) is not node.kind:
        label.append(f"  ({node.kind.value})", style="dim")
    for flag, on in (("dropped", node.dropped), ("duplicate", node.duplicate)):
        if on:
            label.append(f"  ({flag})", style="dim")
    return label


# -- trees ----------------------------------------------------------------------------------------

def _add_sections(tree: Tree, result: ResultView, expand: bool) -> None:
    """Sections arrive flattened with a depth; rebuild the nesting with a stack of branches."""
    owner = result.service + (" (cached)" if result.cached else "") + (" (partial)" if result.partial else "")
    if result.context:
        tree.add(_text(owner, "blue") + Text(": ") + _text(result.context, "dim"))
    if not (result.sections or result.metadata or result.objects):
        tree.add(_text(owner, "blue") + Text(": no findings", style="dim"))
    stack: list[Tree] = [tree]
    for section in result.sections:
        depth = min(section.depth, len(stack) - 1)
        del stack[depth + 1:]
        stack.append(stack[depth].add(section_label(section, owner if depth == 0 else "", expand)))
    if result.metadata:
        facts = ", ".join(f"{key}: {value}" for key, value in result.metadata.items())
        tree.add(_text(owner, "blue") + Text(" metadata: ") + _text(facts))
    for obj in result.objects:
        line = _text(owner, "blue") + Text(f" {obj.kind.value} object ") + _text(obj.name, "bold")
        line.append(f"  {obj.file.size} bytes", style="dim")
        if obj.description:
            line.append("  ").append_text(_text(obj.description, "dim"))
        tree.add(line)


def _add_node(tree: Tree, node: FileNode, expand: bool) -> None:
    for result in node.results:
        _add_sections(tree, result, expand)
    for error in node.errors:
        tree.add(error_label(error))
    for child in node.children:
        _add_node(tree.add(node_label(child)), child, expand)


def node_tree(node: FileNode, expand: bool = False) -> Tree:
    """One file, its results' sections, its errors and its children, nested (`expand`: every body line)."""
    tree = Tree(node_label(node), guide_style="dim")
    _add_node(tree, node, expand)
    return tree


def summary_header(summary: Summary) -> Text:
    header = verdict_text(summary.verdict)
    header.append(f"  score {summary.score}", style=_score_style(summary.score))
    header.append("  sid ").append_text(_text(summary.sid, "dim"))
    files = summary.file_count or len(summary.files)
    header.append(f"  {files} file{'s' if files != 1 else ''}", style="dim")
    if summary.errors:
        header.append(f"  {summary.errors} errors", style="red")
    if summary.cached_results:
        header.append(f"  {summary.cached_results} cached", style="dim")
    return header


def summary_tree(summary: Summary, expand: bool = False) -> Tree:
    """The verdict tree of one submission: header, then every root file as a branch (`expand`: every body line)."""
    tree = Tree(summary_header(summary), guide_style="dim")
    for node in summary.files:
        _add_node(tree.add(node_label(node)), node, expand)
    return tree


def summary_line(summary: Summary) -> Text:
    """One line per submission, for `sluice watch`."""
    line = summary_header(summary)
    names = ", ".join(node.name or node.sha256[:16] for node in summary.files)
    return line.append("  ").append_text(_text(names))
