"""HTML smuggling: a payload carried inside the page as base64 and saved by the browser itself
(a `download` anchor on a data: URL, or a script that builds a Blob and saves it through
createObjectURL + a.download or navigator.msSaveOrOpenBlob). The payload is decoded here, so it is
analysed as a child, as a mail gateway would never see it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from services.html.parse import Page

MARKERS = re.compile(r"msSaveOrOpenBlob|msSaveBlob|createObjectURL|new\s+Blob\s*\(|\.download\s*=", re.I)
_B64_LITERAL = re.compile(r"""["'`]([A-Za-z0-9+/\s\\]{64,}={0,2})["'`]""")
_DOWNLOAD_NAME = re.compile(r"""\.download\s*=\s*["'`]([^"'`]{1,200})["'`]|msSaveOrOpenBlob\s*\([^,]+,\s*["'`]([^"'`]{1,200})""")
_DATA_URL = re.compile(r"^data:([^,;]*)((?:;[^,;]*)*),(.*)$", re.S | re.I)
MIN_PAYLOAD = 16  # decoded bytes: shorter base64 strings are tokens and ids, not files


@dataclass
class Payload:
    name: str
    data: bytes
    how: str


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(re.sub(r"[\s\\]", "", text), validate=True)
    except (binascii.Error, ValueError):
        return None


def _data_url(url: str) -> bytes | None:
    found = _DATA_URL.match(url.strip())
    if not found:
        return None
    if ";base64" in found.group(2).lower():
        return _b64(found.group(3))
    return unquote_to_bytes(found.group(3))


def payloads(page: Page, max_payloads: int, max_bytes: int) -> list[Payload]:
    """The smuggled files in `page`, at most `max_payloads` and `max_bytes` decoded in all."""
    found: list[Payload] = []
    budget = max_bytes

    def keep(name: str, data: bytes | None, how: str) -> None:
        nonlocal budget
        if data and len(data) >= MIN_PAYLOAD and len(found) < max_payloads and len(data) <= budget:
            budget -= len(data)
            found.append(Payload(name, data, how))

    for link in page.links:
        if link.download is not None and link.href.lower().startswith("data:"):
            keep(link.download or f"download-{len(found) + 1}.bin", _data_url(link.href), "data: URL in a download anchor")
    for tag, url in page.embedded_data:
        keep(f"{tag}-{len(found) + 1}.bin", _data_url(url), f"data: URL loaded by an <{tag}>")
    for script in page.scripts:
        if not MARKERS.search(script.source):
            continue
        names = [a or b for a, b in _DOWNLOAD_NAME.findall(script.source)]
        literals = sorted(_B64_LITERAL.findall(script.source), key=len, reverse=True)
        for index, literal in enumerate(literals):
            name = names[index] if index < len(names) else f"smuggled-{len(found) + 1}.bin"
            keep(name, _b64(literal), "base64 in a script that saves a Blob")
    return found
