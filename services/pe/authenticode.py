"""Authenticode: who signed a PE and whether the signature still holds, read with lief.

lief checks what can be checked offline: the file's Authenticode hash against the signed digest
(BAD_DIGEST: the file was changed after signing) and the signer's signature over the signed
attributes (BAD_SIGNATURE). Whether the chain ends at a root an operator trusts needs a root
store, which this service does not carry; it says so rather than implying trust.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lief

lief.logging.disable()

SIGNED_BUT_BROKEN = 10
SELF_SIGNED = 11


@dataclass
class Signer:
    subject: str
    issuer: str
    serial: str
    valid: str  # "from .. to .."


@dataclass
class Authenticode:
    verifies: bool
    problems: list[str]  # lief's verification flags other than OK, lower case
    signers: list[Signer] = field(default_factory=list)
    certificates: int = 0

    @property
    def self_signed(self) -> bool:
        return bool(self.signers) and all(s.subject == s.issuer for s in self.signers)


def _date(parts: list[int]) -> str:
    return "{:04d}-{:02d}-{:02d}".format(*parts[:3])


def read(data: bytes) -> Authenticode | None:
    """The signature facts, or None for an unsigned (or unparsable) PE."""
    binary = lief.PE.parse(list(data))
    if binary is None or not binary.has_signatures:
        return None
    flags = binary.verify_signature()
    problems = [] if flags == lief.PE.Signature.VERIFICATION_FLAGS.OK else \
        [str(f).split(".")[-1].lower() for f in lief.PE.Signature.VERIFICATION_FLAGS if f.value and f in flags]
    found = Authenticode(not problems, problems)
    for signature in binary.signatures:
        found.certificates += len(list(signature.certificates))
        for signer in signature.signers:
            cert = signer.cert
            serial = signer.serial_number
            found.signers.append(Signer(
                subject=cert.subject if cert else "(certificate not in the signature)",
                issuer=signer.issuer,
                serial=serial.hex() if isinstance(serial, (bytes, bytearray)) else bytes(serial).hex(),
                valid=f"{_date(cert.valid_from)} to {_date(cert.valid_to)}" if cert else "",
            ))
    return found
