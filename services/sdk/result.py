"""`Result` and `ResultSection`, shaped as Assemblyline 4.7's, so a service ports by changing imports.

Scores are not set here: a section names a heuristic from the manifest and the runner turns it
into a score, so an operator tunes scores in one place.

Every AL4 section type is here (text, memory dump, graph, URL, JSON, key-value, ordered
key-value, process tree, table, image, multi, timeline, sandbox), each with its AL4 body class
(`KVSectionBody`, ...), so a `ResultMultiSection` can mix them. On the wire a structured body is
JSON text with its `body_format` beside it; the terminal, `--json` and the web front each render
it in their own way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from services.sdk.sandbox import (
    SandboxAnalysisMetadata,
    SandboxHeuristicItem,
    SandboxMachineMetadata,
    SandboxNetflowItem,
    SandboxProcessItem,
    SandboxSignatureItem,
)

if TYPE_CHECKING:
    from services.sdk.request import Request


class BODY_FORMAT:  # noqa: N801 - the name service authors know from Assemblyline
    TEXT = "TEXT"
    MEMORY_DUMP = "MEMORY_DUMP"
    GRAPH_DATA = "GRAPH_DATA"
    URL = "URL"
    JSON = "JSON"
    KEY_VALUE = "KEY_VALUE"
    PROCESS_TREE = "PROCESS_TREE"
    TABLE = "TABLE"
    IMAGE = "IMAGE"
    MULTI = "MULTI"
    DIVIDER = "DIVIDER"  # only inside a MULTI body
    ORDERED_KEY_VALUE = "ORDERED_KEY_VALUE"
    TIMELINE = "TIMELINE"
    SANDBOX = "SANDBOX"


FORMATS = frozenset(v for k, v in vars(BODY_FORMAT).items() if k.isupper())


class PROMOTE_TO:  # noqa: N801 - AL4's name; Sluice keeps the mark on the section, nothing more
    SCREENSHOT = "SCREENSHOT"
    ENTROPY = "ENTROPY"
    URI_PARAMS = "URI_PARAMS"


class InvalidHeuristicException(ValueError):
    """Setting a second, different heuristic on a section (AL4's name for it)."""


class InvalidFunctionException(TypeError):
    """A text method on a typed section (AL4's name for it)."""


class Heuristic:
    """A heuristic fired by a section: the manifest's `heur_id`, with ATT&CK ids, signatures and
    how often each fired.

    As AL4: `signatures` maps a signature to its frequency; a heuristic without signatures
    counts `frequency`. The runner scores it from the manifest: per signature its
    `signature_score_map` score (else `score_map` given here, else the heuristic's score) times
    its frequency, summed; without signatures the score times `frequency`; capped at `max_score`.
    """

    def __init__(self, heur_id: int, attack_id: str | None = None, signature: str | None = None,
                 attack_ids: list[str] | None = None, signatures: dict[str, int] | None = None,
                 frequency: int = 1, score_map: dict[str, int] | None = None) -> None:
        self.heur_id = int(heur_id)
        self.attack_ids: list[str] = []
        self.signatures: dict[str, int] = dict(signatures or {})
        self.score_map: dict[str, int] = dict(score_map or {})
        for attack in [*(attack_ids or []), attack_id]:
            self.add_attack_id(attack)
        if signature:
            self.add_signature_id(signature, frequency=frequency)
        self.frequency = 0 if self.signatures else frequency

    def add_attack_id(self, attack_id: str | None) -> None:
        if attack_id and attack_id not in self.attack_ids:
            self.attack_ids.append(attack_id)

    def add_signature_id(self, signature: str | None, score: int | None = None, frequency: int = 1) -> None:
        if not signature:
            return
        self.signatures[signature] = self.signatures.get(signature, 0) + frequency
        if score is not None:
            self.score_map[signature] = score

    def increment_frequency(self, frequency: int = 1) -> None:
        self.frequency += frequency


def append_tag(tags: list[tuple[str, str]], name: str, value: str | bytes | int) -> None:
    """Add a (name, value) tag once; bytes are decoded (a hostile file's bytes are not UTF-8)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    tag = (str(name), str(value))
    if tag not in tags:
        tags.append(tag)


# -- bodies: AL4's SectionBody classes, usable alone (in a MULTI section) or through a section --

class SectionBody:
    def __init__(self, body_format: str, body: Any = None) -> None:
        self.format = body_format
        self._data = body
        self.config: dict[str, Any] = {}

    @property
    def body(self) -> str | None:
        if not self._data:
            return None
        return self._data if isinstance(self._data, str) else json.dumps(self._data, default=str)

    def set_body(self, body: Any) -> None:
        self._data = body


class TextSectionBody(SectionBody):
    def __init__(self, body: str | None = None) -> None:
        super().__init__(BODY_FORMAT.TEXT, body)

    def add_line(self, text: str | list[str]) -> str:
        line = "".join(text) if isinstance(text, list) else str(text)
        self._data = f"{self._data}\n{line}" if self._data else line
        return self._data

    def add_lines(self, lines: list[str]) -> str | None:
        for line in lines or []:
            self.add_line(line)
        return self._data


class MemorydumpSectionBody(SectionBody):
    def __init__(self, body: str | None = None) -> None:
        super().__init__(BODY_FORMAT.MEMORY_DUMP, body)


class URLSectionBody(SectionBody):
    def __init__(self) -> None:
        super().__init__(BODY_FORMAT.URL, [])

    def add_url(self, url: str, name: str | None = None) -> None:
        if not url:
            raise ValueError("add_url: the URL is empty")
        self._data.append({"url": url, **({"name": name} if name else {})})


class GraphSectionBody(SectionBody):
    def __init__(self) -> None:
        super().__init__(BODY_FORMAT.GRAPH_DATA)

    def set_colormap(self, cmap_min: int, cmap_max: int, values: list[int]) -> None:
        self._data = {"type": "colormap", "data": {"domain": [cmap_min, cmap_max], "values": list(values)}}


class KVSectionBody(SectionBody):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(BODY_FORMAT.KEY_VALUE, dict(kwargs))

    def set_item(self, key: str, value: Any) -> None:
        self._data[str(key)] = value

    def update_items(self, items: dict[str, Any]) -> None:
        self._data.update({str(k): v for k, v in items.items()})


class OrderedKVSectionBody(SectionBody):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(BODY_FORMAT.ORDERED_KEY_VALUE, [[str(k), v] for k, v in kwargs.items()])

    def add_item(self, key: str, value: Any) -> None:
        self._data.append([str(key), value])


class JSONSectionBody(SectionBody):
    def __init__(self) -> None:
        super().__init__(BODY_FORMAT.JSON, {})

    def set_json(self, json_body: Any) -> None:
        self._data = json_body

    def update_json(self, json_body: dict[str, Any]) -> None:
        self._data.update(json_body)


class ProcessItem:
    """One process of a PROCESS_TREE body, with its children."""

    def __init__(self, pid: int, name: str, cmd: str, signatures: dict[str, int] | None = None,
                 children: list[ProcessItem] | None = None, network_count: int = 0, file_count: int = 0,
                 registry_count: int = 0, safelisted: bool = False) -> None:
        self.pid, self.name, self.cmd = pid, name, cmd
        self.signatures = dict(signatures or {})
        self.children = list(children or [])
        self.network_count, self.file_count, self.registry_count = network_count, file_count, registry_count
        self.safelisted = safelisted

    def add_signature(self, name: str, score: int) -> None:
        self.signatures[name] = score

    def add_child_process(self, process: ProcessItem) -> None:
        self.children.append(process)

    def _add_events(self, counter: str, val: int) -> None:
        if val < 0:
            raise ValueError(f"number of events to add must be >= 0, got {val}")
        setattr(self, counter, getattr(self, counter) + val)

    def add_network_events(self, val: int = 1) -> None:
        self._add_events("network_count", val)

    def add_file_events(self, val: int = 1) -> None:
        self._add_events("file_count", val)

    def add_registry_events(self, val: int = 1) -> None:
        self._add_events("registry_count", val)

    def safelist(self) -> None:
        self.safelisted = True

    def as_primitives(self) -> dict[str, Any]:
        return {"process_pid": self.pid, "process_name": self.name, "command_line": self.cmd,
                "signatures": self.signatures, "children": [c.as_primitives() for c in self.children],
                "network_count": self.network_count, "file_count": self.file_count,
                "registry_count": self.registry_count, "safelisted": self.safelisted}


class ProcessTreeSectionBody(SectionBody):
    def __init__(self) -> None:
        super().__init__(BODY_FORMAT.PROCESS_TREE, [])

    def add_process(self, process: ProcessItem) -> None:
        self._data.append(process.as_primitives())


class TableRow(dict):
    """One table row: `TableRow(name=".text", entropy=6.2)` or `TableRow({"name": ".text"})`."""

    def __init__(self, *args: dict[str, Any], **kwargs: Any) -> None:
        super().__init__()
        for arg in args:
            self.update(arg)
        self.update(kwargs)


class TableSectionBody(SectionBody):
    def __init__(self) -> None:
        super().__init__(BODY_FORMAT.TABLE, [])

    def add_row(self, row: dict[str, Any]) -> None:
        self._data.append(dict(row))
        self.set_column_order(list(row))

    def set_column_order(self, order: list[str]) -> None:
        self.config = {"column_order": list(order)}


class ImageSectionBody(SectionBody):
    """Images the service stored with `request.add_image`; the body references them by sha256."""

    def __init__(self, request: Request) -> None:
        super().__init__(BODY_FORMAT.IMAGE, [])
        self._request = request

    def add_image(self, path: str, name: str, description: str, classification: str | None = None,
                  ocr_heuristic_id: int | None = None, ocr_io: Any = None) -> ResultSection | None:
        entry = self._request.add_image(path, name, description, classification, ocr_heuristic_id, ocr_io)
        ocr_section = entry.pop("ocr_section", None)
        self._data.append(entry)
        return ocr_section


class MultiSectionBody(SectionBody):
    def __init__(self) -> None:
        super().__init__(BODY_FORMAT.MULTI, [])

    def add_section_body(self, section_body: SectionBody) -> None:
        self._data.append([section_body.format, section_body._data, section_body.config])


class DividerSectionBody(SectionBody):
    def __init__(self) -> None:
        super().__init__(BODY_FORMAT.DIVIDER)


class TimelineSectionBody(SectionBody):
    def __init__(self) -> None:
        super().__init__(BODY_FORMAT.TIMELINE, [])

    def add_node(self, title: str, content: str, opposite_content: str, icon: str | None = None,
                 signatures: list[str] | None = None, score: int = 0) -> None:
        self._data.append({"title": title, "content": content, "opposite_content": opposite_content,
                           "icon": icon, "signatures": list(signatures or []), "score": score})


class SandboxSectionBody(SectionBody):
    def __init__(self) -> None:
        super().__init__(BODY_FORMAT.SANDBOX, {
            "sandbox_name": None, "sandbox_version": None, "machine_metadata": None, "analysis_metadata": None,
            "processes": [], "netflows": [], "signatures": [], "heuristics": [],
        })

    def set_sandbox(self, name: str, version: str | None, machine_metadata: SandboxMachineMetadata | None,
                    analysis_metadata: SandboxAnalysisMetadata | None) -> None:
        self._data.update(sandbox_name=name, sandbox_version=version,
                          machine_metadata=machine_metadata.as_primitives() if machine_metadata else None,
                          analysis_metadata=analysis_metadata.as_primitives() if analysis_metadata else None)

    def _add(self, key: str, item: Any, kind: type) -> None:
        if not isinstance(item, kind):
            raise TypeError(f"expected a {kind.__name__}, got {type(item).__name__}")
        self._data[key].append(item.as_primitives())

    def add_process(self, process: SandboxProcessItem) -> None:
        self._add("processes", process, SandboxProcessItem)

    def add_netflow(self, netflow: SandboxNetflowItem) -> None:
        self._add("netflows", netflow, SandboxNetflowItem)

    def add_signature(self, signature: SandboxSignatureItem) -> None:
        self._add("signatures", signature, SandboxSignatureItem)

    def add_heuristic(self, heuristic: SandboxHeuristicItem) -> None:
        self._add("heuristics", heuristic, SandboxHeuristicItem)


# -- sections ----------------------------------------------------------------------------------

class ResultSection:
    """A titled part of a result: a body, tags, at most one heuristic, and subsections.

    The arguments are AL4's, in AL4's order. `classification`, `zeroize_on_tag_safe`,
    `zeroize_on_sig_safe` and `auto_collapse` travel with the section to the summary.
    """

    def __init__(
        self,
        title_text: str | list[str],
        body: str | SectionBody | dict | list | None = None,
        classification: str | None = None,
        body_format: str = BODY_FORMAT.TEXT,
        heuristic: int | Heuristic | None = None,
        tags: dict[str, Iterable[str]] | None = None,
        parent: ResultSection | Result | None = None,
        zeroize_on_tag_safe: bool = False,
        auto_collapse: bool = False,
        zeroize_on_sig_safe: bool = True,
    ) -> None:
        if classification in FORMATS:  # Sluice's own older order put body_format third
            classification, body_format = None, classification
        self.title_text = "".join(title_text) if isinstance(title_text, list) else str(title_text)
        self.classification = classification or ""
        self.zeroize_on_tag_safe = zeroize_on_tag_safe
        self.zeroize_on_sig_safe = zeroize_on_sig_safe
        self.auto_collapse = auto_collapse
        self.promote_to: str | None = None
        self.body_format = body_format
        self._config: dict[str, Any] = {}
        self._lines: list[str] = []
        self._body: Any = None
        self.heuristic: Heuristic | None = None
        self.tags: list[tuple[str, str]] = []
        self.subsections: list[ResultSection] = []
        self.parent: ResultSection | Result | None = None
        if body is not None:
            self.set_body(body, body_format)
        if heuristic is not None:
            self.set_heuristic(heuristic)
        self.set_tags(tags or {})
        if parent is not None:
            parent.add_subsection(self) if isinstance(parent, ResultSection) else parent.add_section(self)

    def add_line(self, text: str | list[str]) -> None:
        self._text_lines().append("".join(text) if isinstance(text, list) else str(text))

    def _text_lines(self) -> list[str]:
        """The lines of a text body; a structured body (key-value, table, ...) has none to add to."""
        if isinstance(self._body, str):
            self._lines, self._body = self._body.splitlines(), None
        elif self._body is not None:
            raise InvalidFunctionException(
                f"section {self.title_text!r} has a {self.body_format} body: add_line is for text sections "
                f"(use the typed section's own methods, or a text subsection)")
        return self._lines

    def add_lines(self, lines: Iterable[str], limit: int | None = None) -> ResultSection:
        """Add lines; with `limit`, at most that many and then a line saying how many more there were
        (a hostile file can make any list huge). Returns the section, so calls chain."""
        lines = [str(line) for line in lines]
        shown = lines if limit is None else lines[:limit]
        target = self._text_lines()
        target.extend(shown)
        if len(lines) > len(shown):
            target.append(f"… and {len(lines) - len(shown)} more")
        return self

    def set_body(self, body: Any, body_format: str | None = None) -> None:
        if isinstance(body, SectionBody):
            self._body, self.body_format, self._config = body._data, body.format, body.config
            return
        self._body = body
        if body_format:
            self.body_format = body_format

    def set_heuristic(self, heur_id: int | Heuristic | None, attack_id: str | None = None,
                      signature: str | None = None) -> None:
        """Fire heuristic `heur_id` of the manifest; one per section, as in Assemblyline.

        Firing the same heuristic again adds the new ATT&CK id or signature to it (AL4 raises);
        a different one raises. `None` clears it.
        """
        if heur_id is None:
            self.heuristic = None
            return
        new = heur_id if isinstance(heur_id, Heuristic) else Heuristic(heur_id)
        new.add_attack_id(attack_id)
        new.add_signature_id(signature)
        if self.heuristic is None:
            self.heuristic = new
        elif self.heuristic.heur_id != new.heur_id:
            raise InvalidHeuristicException(
                f"section {self.title_text!r} already has heuristic {self.heuristic.heur_id}, not {new.heur_id}")
        else:
            for attack in new.attack_ids:
                self.heuristic.add_attack_id(attack)
            for sig, freq in new.signatures.items():
                self.heuristic.add_signature_id(sig, new.score_map.get(sig), freq)

    @property
    def heur_id(self) -> int | None:
        return self.heuristic.heur_id if self.heuristic else None

    def add_tag(self, name: str, value: str | bytes | int) -> None:
        append_tag(self.tags, name, value)

    def set_tags(self, tags: dict[str, Iterable[str]]) -> None:
        self.tags = []
        for name, values in tags.items():
            for value in values:
                self.add_tag(name, value)

    def add_subsection(self, section: ResultSection, on_top: bool = False) -> None:
        self.subsections.insert(0, section) if on_top else self.subsections.append(section)
        section.parent = self

    def add_section(self, section: ResultSection, on_top: bool = False) -> None:
        """AL3's name for `add_subsection`."""
        self.add_subsection(section, on_top)

    @property
    def body_config(self) -> dict[str, Any]:
        """How to show the body (a table's `column_order`)."""
        return self._config

    @property
    def body(self) -> str:
        """The body as text: lines joined, or structured bodies as JSON."""
        if self._body is None:
            return "\n".join(self._lines)
        if isinstance(self._body, str):
            return self._body
        return json.dumps(self._body, default=str)


class TypeSpecificResultSection(ResultSection):
    """A section whose body is one `SectionBody`; text methods refuse, as in AL4."""

    def __init__(self, title_text: str | list[str], section_body: SectionBody, **kwargs: Any) -> None:
        kwargs.pop("body_format", None)
        kwargs.pop("body", None)
        self.section_body = section_body
        super().__init__(title_text, body_format=section_body.format, **kwargs)

    @property
    def body_config(self) -> dict[str, Any]:
        return self.section_body.config

    @property
    def body(self) -> str:
        self._body = self.section_body._data  # set_json and set_colormap replace the data object
        return super().body

    def add_line(self, text: str | list[str]) -> None:
        raise InvalidFunctionException(f"{type(self).__name__}: add_line is for text sections")

    def add_lines(self, lines: Iterable[str], limit: int | None = None) -> ResultSection:
        raise InvalidFunctionException(f"{type(self).__name__}: add_lines is for text sections")

    def set_body(self, body: Any, body_format: str | None = None) -> None:
        if hasattr(self, "section_body"):
            raise InvalidFunctionException(f"{type(self).__name__}: set the body through its own methods")
        super().set_body(body, body_format)


class ResultTextSection(ResultSection):
    """Plain text lines; the same as `ResultSection`, named for symmetry with the typed ones."""

    def __init__(self, title_text: str | list[str], **kwargs: Any) -> None:
        kwargs.pop("body_format", None)
        super().__init__(title_text, body_format=BODY_FORMAT.TEXT, **kwargs)


class ResultMemoryDumpSection(ResultSection):
    """A dump shown monospaced, never interpreted: a text `body` as AL4, or `data=` bytes as a hex dump."""

    def __init__(self, title_text: str | list[str], data: bytes | None = None, **kwargs: Any) -> None:
        kwargs.pop("body_format", None)
        if data is not None:
            kwargs["body"] = hexdump(data)
        super().__init__(title_text, body_format=BODY_FORMAT.MEMORY_DUMP, **kwargs)


class ResultGraphSection(TypeSpecificResultSection):
    def __init__(self, title_text: str | list[str], **kwargs: Any) -> None:
        super().__init__(title_text, GraphSectionBody(), **kwargs)

    def set_colormap(self, cmap_min: int, cmap_max: int, values: list[int]) -> None:
        self.section_body.set_colormap(cmap_min, cmap_max, values)

    def promote_as_entropy(self) -> None:
        self.promote_to = PROMOTE_TO.ENTROPY


class ResultURLSection(TypeSpecificResultSection):
    """Links: `add_url("https://attack.mitre.org/techniques/T1055/", name="T1055")`."""

    def __init__(self, title_text: str | list[str], **kwargs: Any) -> None:
        super().__init__(title_text, URLSectionBody(), **kwargs)

    def add_url(self, url: str, name: str | None = None) -> None:
        self.section_body.add_url(url, name)


class ResultKeyValueSection(TypeSpecificResultSection):
    """A small table of facts: `set_item("Compile time", "2031-01-01")`."""

    def __init__(self, title_text: str | list[str], body: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(title_text, KVSectionBody(**(body or {})), **kwargs)

    def set_item(self, key: str, value: Any) -> None:
        self.section_body.set_item(key, value)

    def update_items(self, items: dict[str, Any]) -> None:
        self.section_body.update_items(items)


class ResultOrderedKeyValueSection(TypeSpecificResultSection):
    """Facts in the order given, keys may repeat."""

    def __init__(self, title_text: str | list[str], body: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(title_text, OrderedKVSectionBody(**(body or {})), **kwargs)

    def add_item(self, key: str, value: Any) -> None:
        self.section_body.add_item(key, value)

    def promote_as_uri_params(self) -> None:
        self.promote_to = PROMOTE_TO.URI_PARAMS


class ResultJSONSection(TypeSpecificResultSection):
    """Any JSON document, shown folded."""

    def __init__(self, title_text: str | list[str], body: Any = None, **kwargs: Any) -> None:
        super().__init__(title_text, JSONSectionBody(), **kwargs)
        if body is not None:
            self.set_json(body)

    def set_json(self, data: Any) -> None:
        self.section_body.set_json(data)

    def update_json(self, data: dict[str, Any]) -> None:
        self.section_body.update_json(data)


class ResultProcessTreeSection(TypeSpecificResultSection):
    def __init__(self, title_text: str | list[str], **kwargs: Any) -> None:
        super().__init__(title_text, ProcessTreeSectionBody(), **kwargs)

    def add_process(self, process: ProcessItem) -> None:
        self.section_body.add_process(process)


class ResultTableSection(TypeSpecificResultSection):
    """Rows of the same columns, in order."""

    def __init__(self, title_text: str | list[str], rows: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(title_text, TableSectionBody(), **kwargs)
        for row in rows or []:
            self.add_row(row)

    def add_row(self, row: dict[str, Any]) -> None:
        self.section_body.add_row(row)

    def set_column_order(self, order: list[str]) -> None:
        self.section_body.set_column_order(order)


class ResultImageSection(TypeSpecificResultSection):
    """Images (screenshots, extracted pictures) stored beside the result and shown in the web front."""

    def __init__(self, request: Request, title_text: str | list[str], **kwargs: Any) -> None:
        super().__init__(title_text, ImageSectionBody(request), **kwargs)

    def add_image(self, path: str, name: str, description: str, classification: str | None = None,
                  ocr_heuristic_id: int | None = None, ocr_io: Any = None,
                  auto_add_ocr_section: bool = True) -> ResultSection | None:
        ocr_section = self.section_body.add_image(path, name, description, classification, ocr_heuristic_id, ocr_io)
        if ocr_section is not None and auto_add_ocr_section:
            self.add_subsection(ocr_section)
            return None
        return ocr_section

    def promote_as_screenshot(self) -> None:
        self.promote_to = PROMOTE_TO.SCREENSHOT


class ResultTimelineSection(TypeSpecificResultSection):
    def __init__(self, title_text: str | list[str], **kwargs: Any) -> None:
        super().__init__(title_text, TimelineSectionBody(), **kwargs)

    def add_node(self, title: str, content: str, opposite_content: str, icon: str | None = None,
                 signatures: list[str] | None = None, score: int = 0) -> None:
        self.section_body.add_node(title, content, opposite_content, icon, signatures, score)


class ResultMultiSection(TypeSpecificResultSection):
    """Several bodies in one section (text, then a table, a divider, key-values...)."""

    def __init__(self, title_text: str | list[str], **kwargs: Any) -> None:
        super().__init__(title_text, MultiSectionBody(), **kwargs)

    def add_section_part(self, section_part: SectionBody) -> None:
        self.section_body.add_section_body(section_part)


class ResultSandboxSection(TypeSpecificResultSection):
    """A dynamic-analysis run (AL4 4.7): the sandbox, its processes, network flows and signatures."""

    def __init__(self, title_text: str | list[str], **kwargs: Any) -> None:
        super().__init__(title_text, SandboxSectionBody(), **kwargs)

    def set_sandbox(self, name: str, version: str | None, machine_metadata: SandboxMachineMetadata | None,
                    analysis_metadata: SandboxAnalysisMetadata | None) -> None:
        self.section_body.set_sandbox(name, version, machine_metadata, analysis_metadata)

    def add_process(self, process: SandboxProcessItem) -> None:
        self.section_body.add_process(process)

    def add_processes(self, processes: list[SandboxProcessItem]) -> None:
        for process in processes:
            self.add_process(process)

    def add_netflow(self, netflow: SandboxNetflowItem) -> None:
        self.section_body.add_netflow(netflow)

    def add_netflows(self, netflows: list[SandboxNetflowItem]) -> None:
        for netflow in netflows:
            self.add_netflow(netflow)

    def add_signature(self, signature: SandboxSignatureItem) -> None:
        self.section_body.add_signature(signature)

    def add_signatures(self, signatures: list[SandboxSignatureItem]) -> None:
        for signature in signatures:
            self.add_signature(signature)

    def add_heuristic(self, heuristic: SandboxHeuristicItem) -> None:
        self.section_body.add_heuristic(heuristic)


def hexdump(data: bytes, width: int = 16) -> str:
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset:offset + width]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<{width * 3}} {text}")
    return "\n".join(lines)


class Result:
    """A service's answer: top-level sections, and tags that belong to no section (AL3's
    `result.add_tag`); those are reported in a section of their own, "Result tags"."""

    def __init__(self, sections: list[ResultSection] | None = None) -> None:
        self.sections: list[ResultSection] = list(sections or [])
        self.tags: list[tuple[str, str]] = []

    def add_section(self, section: ResultSection, on_top: bool = False) -> None:
        self.sections.insert(0, section) if on_top else self.sections.append(section)
        section.parent = self

    def add_tag(self, name: str, value: str | bytes | int) -> None:
        append_tag(self.tags, name, value)
