"""Filename: every file's name checked for lies (double extension, direction override, blank-
padded extension, a document extension on executable content).

A service of its own, not a section of characterize: results are cached by sha256, and a name
is not part of the bytes. The same launcher submitted as `setup.exe` and as `invoice.pdf.exe` must
be judged twice, so this service runs uncached (`disable_cache`), and never reads the file
(`file_required: false`), which makes running it on every file nearly free.
"""

from __future__ import annotations

from services.filename.lies import lies
from services.sdk import Heuristic, Request, Result, ResultSection, ServiceBase

LYING_NAME = 1


class Filename(ServiceBase):
    def execute(self, request: Request) -> None:
        request.result = result = Result()
        found = lies(request.file_name, request.file_type)
        if not found:
            return
        heuristic = Heuristic(LYING_NAME)
        for lie in found:
            heuristic.add_signature_id(lie.signature)
        result.add_section(ResultSection("File name disguises the file", "\n".join(x.line for x in found), heuristic=heuristic))
