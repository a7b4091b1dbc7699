"""PE: header facts, sections, imports, exports, resources, debug path, signature and overlay of a
Windows executable, then the classic signs of packing and tampering as scored findings.

A file pefile cannot read is a finding too ("Malformed PE"), never a crash: a truncated or
hand-made PE is exactly what this service is shown.
"""

from __future__ import annotations

import time
from importlib.metadata import version

import pefile

from services.pe import parse, report, traits
from services.sdk import Heuristic, Request, Result, ResultKeyValueSection, ResultSection, ServiceBase
from services.sdk.lazy import lazy_import

# lief takes 0.5-0.8 s of CPU to import: loaded by the first PE, not by every process
authenticode = lazy_import("services.pe.authenticode")


class PortableExecutable(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.policy = self.config_as(traits.Policy)
        self.caps = self.config_as(report.Caps)
        # lief's version from its wheel's metadata: asking lief itself would import it
        self._tool_version = f"pefile-{pefile.__version__}+lief-{version('lief')}"

    def get_tool_version(self) -> str:
        return self._tool_version

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
        signature_section = _authenticode(data)
        if signature_section is not None:
            result.add_section(signature_section)


def _authenticode(data: bytes) -> ResultSection | None:
    try:
        signed = authenticode.read(data)
    except Exception as exc:  # noqa: BLE001 - lief on a hostile signature blob raises anything
        return ResultSection("Authenticode signature unreadable", f"{type(exc).__name__}: {exc}")
    if signed is None:
        return None
    verdict = "verifies (digest and signer's signature; the chain's root is not checked offline)" if signed.verifies \
        else "does NOT verify: " + ", ".join(signed.problems)
    section = ResultKeyValueSection("Authenticode signature", {"signature": verdict, "certificates": signed.certificates})
    for number, signer in enumerate(signed.signers, 1):
        section.update_items({f"signer {number}": signer.subject, f"issuer {number}": signer.issuer,
                              f"serial {number}": signer.serial, f"valid {number}": signer.valid})
        section.add_tag("cert.subject", signer.subject)
        section.add_tag("cert.issuer", signer.issuer)
        section.add_tag("cert.serial_no", signer.serial)
    if not signed.verifies:
        heuristic = Heuristic(authenticode.SIGNED_BUT_BROKEN)
        for problem in signed.problems:
            heuristic.add_signature_id(problem)
        section.add_subsection(ResultSection("Signature does not verify", verdict, heuristic=heuristic))
    elif signed.self_signed:
        section.add_subsection(ResultSection("Self-signed", "every signer's certificate is issued by itself", heuristic=authenticode.SELF_SIGNED))
    return section
