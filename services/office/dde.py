"""DDE links with msodde: fields (DDE, DDEAUTO) in Word files and DDE links in Excel files.

msodde picks its parser from the file's content; for anything that is not OLE, OOXML or RTF it
falls back to reading the file as CSV, which is not a container a document typed as Office
can be, so those are not handed to it.
"""

from __future__ import annotations

import io
import zipfile

import olefile
from oletools import msodde

RTF_MAGIC = b"{\\rt"


def dde_links(path: str, data: bytes) -> list[str]:
    """Each DDE command line in the document at `path` (whose bytes are `data`), in order."""
    if not (olefile.isOleFile(data=data) or zipfile.is_zipfile(io.BytesIO(data)) or data.startswith(RTF_MAGIC)):
        return []
    text = msodde.process_file(path, field_filter_mode=msodde.FIELD_FILTER_DDE)
    return [line.strip() for line in text.splitlines() if line.strip()]
