"""PE: header facts, sections, imports, exports, resources, debug path, signature and overlay of a
Windows executable, then the classic signs of packing and tampering as scored findings.

A file pefile cannot read is a finding too ("Malformed PE"), never a crash: a truncated or
hand-made PE is exactly what this service is shown.
"""

from __future__ import annotations

import time

import pefile

from services.pe import parse, report, traits
from services.sdk import Request, Result, ServiceBase


class PortableExecutable(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.policy = self.config_as(traits.Policy)
        self.caps = self.config_as(report.Caps)

    def get_tool_version(self) -> str:
        return f"pefile-{pefile.__version__}"

    def execute(self, request: Request) -> None:
        request.result = result = Result()
        data = request.file_contents
        try:
            info = parse.read(data)
        except pefile.PEFormatError as exc:
            result.add_section(report.finding(traits.malformed([f"pefile could not parse it: {exc}"])))
            return
        for section in report.facts(info, self.caps):
            result.add_section(section)
        for found in traits.findings(info, len(data), self.policy, time.time()):
            result.add_section(report.finding(found))
