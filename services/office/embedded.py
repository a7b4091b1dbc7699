"""Files embedded in a document as OLE objects, taken out so that the mesh analyses them too.

OOXML keeps embedded objects as package parts under `*/embeddings/` (oleObject1.bin, or a whole
.xlsx/.docx). An OLE object that is an OLE "Package" carries a plain file in its
\\x01Ole10Native stream, with the file's original name: that file is what the user would open,
so it is taken out instead of its wrapper. Embedded OOXML documents sit in "Package" streams.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import olefile
from oletools import oleobj

EMBEDDINGS = re.compile(r"(?:^|/)embeddings/[^/]+$", re.IGNORECASE)
NATIVE_STREAM = "\x01ole10native"
PACKAGE_STREAM = "package"
MAX_NAME = 120


@dataclass(frozen=True)
class Embedded:
    name: str            # the child's file name
    data: bytes | None   # None: larger than the limit, listed but not extracted
    size: int
    origin: str          # where it sat: a package part, or a stream path inside the OLE file
    package: bool        # an OLE Package payload (a file dropped into the document)


def is_ole(data: bytes) -> bool:
    # data=, never the positional argument: olefile reads short bytes given there as a path.
    return olefile.isOleFile(data=data)


def _package_name(native: oleobj.OleNativeStream, fallback: str) -> str:
    """The payload's original file name (from its name, source path or temp path), made safe."""
    names = []
    for candidate in (native.filename, native.src_path, native.temp_path):
        base = (candidate or "").replace("\\", "/").rsplit("/", 1)[-1]
        name = oleobj.sanitize_filename(base, max_len=MAX_NAME)
        if name.strip(" ._"):
            names.append(name)
    with_suffix = [n for n in names if "." in n.strip(".")]
    return (with_suffix or names or [fallback])[0]


def from_ole(data: bytes, where: str = "") -> Iterator[Embedded]:
    """The Package payloads and embedded OOXML packages in the OLE file `data`."""
    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        for parts in ole.listdir():
            stream = parts[-1].lower()
            if stream not in (NATIVE_STREAM, PACKAGE_STREAM):
                continue
            origin = where + "/".join(p.replace("\x01", "\\x01") for p in parts)
            content = ole.openstream(parts).read()
            storage = "_".join(parts[:-1]) or "object"
            if stream == PACKAGE_STREAM:
                yield Embedded(f"{storage}-Package", content, len(content), origin, package=False)
                continue
            fallback = f"{storage}-Ole10Native"
            try:
                native = oleobj.OleNativeStream(content)
            except (ValueError, struct.error):  # not the OLE 1.0 layout: keep the stream as it is
                yield Embedded(fallback, content, len(content), origin, package=False)
                continue
            if not native.is_link and native.data:
                name = _package_name(native, fallback)
                yield Embedded(name, bytes(native.data), len(native.data), origin, package=True)


def from_ooxml(data: bytes, max_bytes: int) -> Iterator[Embedded]:
    """Each part under an `embeddings/` folder: its Package payloads when it has any, else the part."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.is_dir() or not EMBEDDINGS.search(info.filename):
                continue
            name = info.filename.rsplit("/", 1)[-1]
            with zf.open(info) as fh:
                content = fh.read(max_bytes + 1)  # never more, whatever the header claims
            if len(content) > max_bytes:
                yield Embedded(name, None, info.file_size, info.filename, package=False)
                continue
            payloads = list(from_ole(content, info.filename + ":")) if is_ole(content) else []
            yield from payloads or [Embedded(name, content, len(content), info.filename, package=False)]


def embedded_objects(data: bytes, max_bytes: int) -> Iterator[Embedded]:
    """What `data` (an OLE or OOXML document) embeds; nothing for other formats."""
    if is_ole(data):
        yield from from_ole(data)
    elif zipfile.is_zipfile(io.BytesIO(data)):
        yield from from_ooxml(data, max_bytes)
