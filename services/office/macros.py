"""VBA (and Excel 4/XLM) macros with olevba: each module's source and olevba's findings about it.

olevba reports everything it finds as (type, keyword, description) triples in one list;
`MacroScan` sorts them into the kinds the manifest scores separately (auto-exec triggers,
suspicious calls, indicators, encoded strings, VBA stomping), so the service never has to
know olevba's spelling of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from oletools import olevba

# olevba also reads plain text as "VBA source"; for a file typed as an Office document that is
# garbage, not a macro, so only real containers count.
CONTAINERS = {
    olevba.TYPE_OLE, olevba.TYPE_OpenXML, olevba.TYPE_FlatOPC_XML, olevba.TYPE_Word2003_XML,
    olevba.TYPE_MHTML, olevba.TYPE_PPT, olevba.TYPE_SLK,
}
# Keywords olevba adds to the suspicious ones to say it saw encoded strings: kind of encoding.
ENCODED_MARKERS = {
    "Hex Strings": "hex", "Base64 Strings": "base64", "Dridex Strings": "dridex",
    "VBA obfuscated Strings": "vba_expression",
}
# Finding types olevba gives each decoded string (with the decoded text as keyword).
DECODED_TYPES = {
    "Hex String": "hex", "Base64 String": "base64", "Dridex string": "dridex", "VBA string": "vba_expression",
}
STOMPING = "VBA Stomping"


@dataclass(frozen=True)
class Module:
    container: str  # the OLE part of an OOXML package holding the VBA project ("" for the file itself)
    stream: str     # the module's stream, e.g. VBA/Module1
    name: str       # olevba's file name for it, e.g. Module1.bas
    code: str

    @property
    def where(self) -> str:
        return f"{self.container}: {self.stream}" if self.container else self.stream


@dataclass(frozen=True)
class Finding:
    keyword: str
    description: str


@dataclass(frozen=True)
class EncodedString:
    kind: str       # hex, base64, dridex, vba_expression
    encoded: str
    decoded: str


@dataclass(frozen=True)
class MacroScan:
    modules: list[Module]
    autoexec: list[Finding]
    suspicious: list[Finding]
    indicators: list[Finding]   # keyword: the value; description: olevba's kind ("URL", "IPv4 address"...)
    encodings: list[str]        # kinds of encoded strings seen, even when none decoded to text
    decoded: list[EncodedString]
    stomping: bool

    def source(self) -> str:
        """All modules as one text, each under a comment naming where it came from."""
        parts = [f"' ---- {m.name} ({m.where})\r\n{m.code}" for m in self.modules]
        return "\r\n".join(parts)


def _sort(modules: list[Module], results: list[tuple[str, str, str]]) -> MacroScan:
    autoexec: list[Finding] = []
    suspicious: list[Finding] = []
    indicators: list[Finding] = []
    encodings: list[str] = []
    decoded: list[EncodedString] = []
    stomping = False
    for kind, keyword, description in results:
        if kind == "AutoExec":
            autoexec.append(Finding(keyword, description))
        elif kind == "Suspicious" and keyword == STOMPING:
            stomping = True
        elif kind == "Suspicious" and keyword in ENCODED_MARKERS:
            encodings.append(ENCODED_MARKERS[keyword])
        elif kind == "Suspicious":
            suspicious.append(Finding(keyword, description))
        elif kind == "IOC":
            indicators.append(Finding(keyword, description))
        elif kind in DECODED_TYPES:
            # For decoded strings olevba's "keyword" is the decoded text, "description" the encoded one.
            decoded.append(EncodedString(DECODED_TYPES[kind], description, keyword))
    return MacroScan(modules, autoexec, suspicious, indicators, encodings, decoded, stomping)


def scan(path: str, deobfuscate: bool = False) -> MacroScan | None:
    """olevba's view of the file at `path`, or None when it holds no macros (or is no Office file).

    The path (not the bytes) is given so olevba can run pcodedmp, which VBA stomping detection
    needs. `deobfuscate` evaluates VBA string expressions: slower, so for deep scans.
    """
    try:
        parser = olevba.VBA_Parser(path)
    except olevba.FileOpenError:
        return None
    try:
        if parser.type not in CONTAINERS or not parser.detect_macros():
            return None
        modules = [
            Module("" if container == path else str(container), str(stream), str(name), code)
            for container, stream, name, code in parser.extract_all_macros()
            if code
        ]
        results = parser.analyze_macros(show_decoded_strings=False, deobfuscate=deobfuscate) or []
        return _sort(modules, results) if modules else None
    finally:
        parser.close()
