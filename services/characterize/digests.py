"""Hashes of the whole file: exact ones to look it up, fuzzy ones to find its near-duplicates."""

from __future__ import annotations

import hashlib

import ssdeep
import tlsh

# ssdeep-wheel bundles libfuzzy (the reference C implementation): about 8 ms per MiB here, where
# the pure-Python ppdeep took 0.4 s per MiB and minutes on large low-variety files.
TOOL_VERSION = f"ssdeep-{ssdeep.__version__} tlsh-{tlsh.__version__}"  # part of the result-cache key


def exact(data: bytes) -> dict[str, str]:
    return {name: hashlib.new(name, data).hexdigest() for name in ("md5", "sha1", "sha256")}


def tlsh_digest(data: bytes) -> str | None:
    """None when TLSH is not computable: under 50 bytes, or too little variety ("TNULL")."""
    digest = tlsh.hash(data)
    return None if digest in ("", "TNULL") else digest


def ssdeep_digest(data: bytes) -> str:
    return ssdeep.hash(data)
