"""Scripts: peel JavaScript/JScript, VBScript, VBA, PowerShell, batch, HTA, WSF and PHP layer by
layer, hand every decoded layer to the mesh as a child, and score what the peeled text does.

The sections read top-down as an analyst works: the layers (how each was obtained from which),
then one section per behaviour with the evidence and the layer it shows in. Every decoded layer
is also a child (`NAME.layerN`, its description saying how it was decoded), so the other services (iocs, yara, pe...) analyse it in turn.
"""

from __future__ import annotations

import re

import msgspec

from services.scripts import behaviours as b
from services.scripts.language import sniff
from services.scripts.peel import Bounds, Layer, Peeled, peel
from services.sdk import (
    Heuristic,
    MaxExtractedExceeded,
    Request,
    Result,
    ResultSection,
    ResultTableSection,
    ServiceBase,
    TableRow,
)

TITLES = {
    b.CRADLE: "Download cradle", b.DOWNLOAD_EXECUTE: "Downloads and runs code", b.LOLBIN: "Runs a living-off-the-land binary",
    b.AMSI: "AMSI bypass", b.ETW: "ETW tampering", b.PERSISTENCE: "Persistence", b.STEALTH_FLAGS: "Hidden or policy-bypassing launch",
    b.EXECUTION: "Runs commands", b.EVASION: "Disables defences or recovery", b.CREDENTIALS: "Credential theft",
    b.IN_MEMORY: "Loads code in memory", b.WEBSHELL: "Web shell", b.SMUGGLING: "HTML smuggling",
}
# How a layer was obtained -> the obfuscation signature it counts as (heuristic 1).
_TECHNIQUES = [
    ("-EncodedCommand", "encoded_command"), ("XOR", "xor"), ("gzip", "compression"), ("deflate", "compression"),
    ("zlib", "compression"), ("base64", "base64"), ("hex", "hex"), ("byte list", "byte_list"),
    ("character codes", "char_codes"), ("string concatenation", "concatenation"), ("string reversal", "reversal"),
    ("string replacement", "replacement"), ("format strings", "format"), ("escape sequences", "escapes"),
    ("backticks and carets", "ticks_carets"), ("batch variables", "batch_variables"), ("JavaScript constant folding", "js_folding"),
]


class Settings(msgspec.Struct, frozen=True):
    """The manifest's config keys."""

    max_layers: int = 16
    max_layer_bytes: int = 4 * 1024 * 1024
    time_budget_seconds: float = 10.0
    max_children: int = 20
    density_threshold: float = 2.0  # obfuscation constructs per 100 characters that make a script "dense"


class Scripts(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.settings = self.config_as(Settings)

    def execute(self, request: Request) -> None:
        request.result = result = Result()
        data = request.file_contents
        language = sniff(data[:65536].decode("utf-8", "replace"), request.file_type)
        s = self.settings
        peeled = peel(data, request.file_type, Bounds(s.max_layers, s.max_layer_bytes, s.time_budget_seconds, s.density_threshold))
        # Behaviours are looked for even in text no language claims: a one-line cradle has too
        # few markers to tell its language, and is exactly what must not slip through.
        found = b.behaviours([(layer.number, layer.text) for layer in peeled.texts])
        if language is None and len(peeled.layers) == 1 and not found:
            result.add_section(ResultSection("Not a script", "No script language's markers, encoded payload or behaviour were found."))
            return
        peeled.layers[0].language = language
        if len(peeled.layers) > 1 or peeled.stopped:  # one layer: the file as given, nothing to show
            result.add_section(_layers_section(peeled))
        obfuscation = _obfuscation_section(peeled, s.density_threshold)
        if obfuscation:
            result.add_section(obfuscation)
        for section in _behaviour_sections(found):
            result.add_section(section)
        executables = [layer for layer in peeled.layers if layer.text is None and re.search(r"PE|ELF", layer.how)]
        if executables:
            result.add_section(ResultSection("Executable hidden in the script",
                                             "\n".join(f"layer {x.number}: {x.how}, {len(x.data):,} bytes" for x in executables),
                                             heuristic=b.EXECUTABLE_PAYLOAD))
        _hand_on(request, result, peeled, s.max_children)


def _layers_section(peeled: Peeled) -> ResultTableSection:
    section = ResultTableSection(f"Layers ({len(peeled.layers)})")
    for layer in peeled.layers:
        origin = "" if layer.parent is None else f"layer {layer.parent}"
        section.add_row(TableRow(layer=layer.number, **{"from": origin}, how=layer.how, language=layer.language or "",
                                 size=len(layer.data), preview=_preview(layer)))
    if peeled.stopped:
        section.add_subsection(ResultSection("Peeling stopped early", peeled.stopped))
    return section


def _preview(layer: Layer) -> str:
    if layer.text is None:
        return layer.data[:16].hex(" ")
    text = " ".join(layer.text.split())
    return text[:120] + ("…" if len(text) > 120 else "")


def _obfuscation_section(peeled: Peeled, threshold: float) -> ResultSection | None:
    heuristic = Heuristic(b.OBFUSCATION)
    lines = []
    for layer in peeled.layers[1:]:
        for marker, signature in _TECHNIQUES:
            if marker in layer.how:
                heuristic.add_signature_id(signature)
        lines.append(f"layer {layer.number} from layer {layer.parent}: {layer.how}")
    section = ResultSection("Obfuscation peeled") if lines else None
    if section:
        section.add_lines(lines)
        section.set_heuristic(heuristic)
    density = b.obfuscation_density(peeled.layers[0].text or "")
    if density >= threshold:
        dense = ResultSection("Dense obfuscation", f"{density:.1f} obfuscation constructs per 100 characters (threshold {threshold:g})",
                              heuristic=b.DENSITY)
        if section is None:
            return dense
        section.add_subsection(dense)
    return section


def _behaviour_sections(found: list[b.Behaviour]) -> list[ResultSection]:
    by_heuristic: dict[int, list[b.Behaviour]] = {}
    for item in found:
        by_heuristic.setdefault(item.heur_id, []).append(item)
    sections = []
    for heur_id, items in sorted(by_heuristic.items()):
        heuristic = Heuristic(heur_id)
        section = ResultSection(TITLES[heur_id])
        for item in items:
            heuristic.add_signature_id(item.signature)
            section.add_line(f"{item.signature} (layer {item.layer}): {item.evidence}")
        section.set_heuristic(heuristic)
        sections.append(section)
    return sections


def _hand_on(request: Request, result: Result, peeled: Peeled, cap: int) -> None:
    """Each layer decoded from the file as given becomes a child; deeper layers come from the
    children themselves when the mesh analyses them (so the tree shows the chain)."""
    direct = [layer for layer in peeled.layers if layer.parent == 0][:cap]
    try:
        for layer in direct:
            data = layer.text.encode("utf-8") if layer.text is not None else layer.data
            request.add_extracted(data, f"{request.file_name}.layer{layer.number}", layer.how)
    except MaxExtractedExceeded:
        result.add_section(ResultSection("Child limit reached", f"this file's limit of {request.max_extracted} children was reached"))
