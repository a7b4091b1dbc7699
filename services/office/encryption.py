"""Encrypted Office documents: detection, and decryption with the passwords malware authors use.

Office encrypts a whole OOXML package (or the streams of an OLE file) with a password; with the
default "VelvetSweatshop" password Excel opens the file without asking, which is why droppers
use it. oletools' crypto module (on msoffcrypto) does both jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oletools import crypto


@dataclass(frozen=True)
class Decrypted:
    password: str
    data: bytes


def is_encrypted(path: str) -> bool:
    return bool(crypto.is_encrypted(path))


def decrypt(path: str, passwords: list[str], work_dir: Path) -> Decrypted | None:
    """The decrypted document and the password that opened it, or None if none did.

    Passwords are tried one at a time (not as one list) to know which one worked. Raises
    whatever msoffcrypto raises for an encryption scheme it does not support.
    """
    for password in dict.fromkeys(p for p in passwords if p):
        out = crypto.decrypt(path, password, dir=str(work_dir))
        if out:
            data = Path(out).read_bytes()
            Path(out).unlink()
            return Decrypted(password, data)
    return None


def default_passwords() -> list[str]:
    """oletools' list of the passwords Office droppers use (copied: it is mutable)."""
    return list(crypto.DEFAULT_PASSWORDS)
