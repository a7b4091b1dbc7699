"""Peel a script layer by layer: simplify what it computes from literals, decode what it carries,
and do the same to every decoded script, within bounds on layers, bytes and time.

A layer is one text the analyst should read: the script as given, the script with its literal
expressions evaluated, a payload decoded from it. Each layer remembers its parent and how it was
obtained, so the report (and the child files) say "layer 3: base64 (-EncodedCommand) of layer 2".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from services.scripts.behaviours import obfuscation_density
from services.scripts.jsfold import fold_javascript
from services.scripts.language import HTA, HTML, JAVASCRIPT, WSF, sniff
from services.scripts.payloads import find_payloads
from services.scripts.rewrite import simplify


@dataclass
class Layer:
    number: int
    parent: int | None  # the layer it came from; None for the script as given
    how: str  # "as given", "literal expressions evaluated (string concatenation, ...)", "base64 ..."
    data: bytes
    text: str | None  # None for a binary payload (a PE, a zip), which is only handed on
    language: str | None = None


@dataclass
class Bounds:
    max_layers: int = 16  # layers in all, the script as given included
    max_layer_bytes: int = 4 * 1024 * 1024  # a larger text is not simplified or searched further
    time_budget: float = 10.0  # seconds of peeling per file; what is left is said, not lost
    dense: float = 2.0  # text of no known language is still rewritten at this obfuscation density


@dataclass
class Peeled:
    layers: list[Layer] = field(default_factory=list)
    stopped: str = ""  # why peeling stopped early, if it did

    @property
    def texts(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.text is not None]


_SCRIPT_BLOCK = re.compile(r"(<script\b([^>]*)>)(.*?)(</script\s*>)", re.I | re.S)
PAGES = (HTA, WSF, HTML)  # markup around scripts: only the script blocks are rewritten
# JavaScript larger than this is left to the pattern rewrites: walking a parse tree in Python
# costs about 3 s per MiB, the patterns a fraction of that.
JS_PARSE_MAX = 1024 * 1024


def _evaluated(text: str, language: str | None, deadline: float, dense: float) -> tuple[str, list[str]]:
    """`text` with its literal expressions evaluated: JavaScript through the parser, then the
    pattern rewrites that every language shares (escapes, char codes, concatenation...). In a
    page (HTML, HTA, WSF) each script block is evaluated on its own and the markup is left alone."""
    used: list[str] = []
    if language is None and obfuscation_density(text) < dense:
        return text, used  # prose, a log, a bare blob: only payloads are looked for, nothing is rewritten
    if language not in PAGES:
        return _evaluate_script(text, language == JAVASCRIPT, used, deadline), used

    def block(m: re.Match[str]) -> str:
        javascript = not re.search(r"vbscript", m.group(2), re.I)
        return m.group(1) + _evaluate_script(m.group(3), javascript, used, deadline) + m.group(4)
    return _SCRIPT_BLOCK.sub(block, text), used


def _evaluate_script(text: str, javascript: bool, used: list[str], deadline: float) -> str:
    """One script evaluated; the names of the rewrites that changed it are added to `used`."""
    if javascript and len(text) <= JS_PARSE_MAX:
        folded = fold_javascript(text, deadline)
        if folded != text and "JavaScript constant folding" not in used:
            used.append("JavaScript constant folding")
        text = folded
    text, rewrites = simplify(text, deadline=deadline)
    used.extend(r for r in rewrites if r not in used)
    return text


def peel(data: bytes, file_type: str, bounds: Bounds) -> Peeled:
    text = data.decode("utf-8", "replace")
    result = Peeled([Layer(0, None, "as given", data, text, sniff(text, file_type))])
    deadline = time.monotonic() + bounds.time_budget
    queue = [0]
    seen = {data}
    while queue:
        layer = result.layers[queue.pop(0)]
        if layer.text is None or len(layer.data) > bounds.max_layer_bytes:
            continue
        if time.monotonic() > deadline:
            result.stopped = f"time budget of {bounds.time_budget:g}s spent; later layers not peeled"
            break
        found: list[tuple[str, bytes, str | None]] = []
        simplified, how = _evaluated(layer.text, layer.language, deadline, bounds.dense)
        if time.monotonic() > deadline:
            result.stopped = f"time budget of {bounds.time_budget:g}s spent evaluating layer {layer.number}; what it decodes to is not peeled"
            break
        if how and simplified.strip() != layer.text.strip():
            found.append((f"literal expressions evaluated ({', '.join(how)})", simplified.encode("utf-8"), simplified))
        for payload in find_payloads(simplified):
            found.append((payload.technique, payload.data, payload.text))
        for how_found, payload_data, payload_text in found:
            if payload_data in seen:
                continue
            if len(result.layers) >= bounds.max_layers:
                result.stopped = f"layer limit of {bounds.max_layers} reached; later layers not peeled"
                return result
            seen.add(payload_data)
            language = sniff(payload_text, "text/plain") if payload_text is not None else None
            if payload_text is not None and language is None:
                language = layer.language  # an evaluated layer keeps its language
            result.layers.append(Layer(len(result.layers), layer.number, how_found, payload_data, payload_text, language))
            queue.append(len(result.layers) - 1)
    return result
