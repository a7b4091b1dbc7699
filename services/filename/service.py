"""Filename: every file's name checked for lies (double extension, direction override, blank-
padded extension, a document extension on executable content).

A service of its own, not a section of characterize: results are cached by sha256, and a name
is not part of the bytes. The same launcher submitted as `setup.exe` and as `invoice.pdf.exe` must
be judged twice, so this service runs uncached (`disable_cache`), and never reads the file
(`file_required: false`), which makes running it on every file nearly free. For the same reason
`execute` is async: a few regexes over a name take microseconds, less than the hand-off to a
worker thread (~0.1 ms of CPU) that a plain `def execute` costs every task.
"""

from __future__ import annotations

from services.filename.lies import lies
from services.sdk import Heuristic, Request, Result, ResultSection, ServiceBase

LYING_NAME = 1


class Filename(ServiceBase):
    async def execute(self, request: Request) -> None:
        request.result = result = Result()
        found = lies(request.file_name, request.file_type)
        if not found:
            return
        heuristic = Heuristic(LYING_NAME)
        for lie in found:
            heuristic.add_signature_id(lie.signature)
        result.add_section(ResultSection("File name disguises the file", "\n".join(x.line for x in found), heuristic=heuristic))
