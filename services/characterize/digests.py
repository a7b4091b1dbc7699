"""Hashes of the whole file: exact ones to look it up, fuzzy ones to find its near-duplicates."""

from __future__ import annotations

import hashlib

import ssdeep

try:
    import tlsh
except ImportError:  # no TLSH binding for this platform: the section says so (TLSH_MISSING)
    tlsh = None

# ssdeep-wheel bundles libfuzzy (the reference C implementation): about 8 ms per MiB here, where
# the pure-Python ppdeep took 0.4 s per MiB and minutes on large low-variety files.
# TLSH: tlsh-python (wheels for Linux x86_64) or, where it has none, py-tlsh (built from source
# with a C++ compiler, `pip install py-tlsh`); both bind Trend Micro's C++ library and agree.
TLSH_MISSING = ("not computed: no TLSH library on this platform (tlsh-python has wheels for Linux x86_64 only; "
                "`pip install py-tlsh` builds one where a C++ compiler is installed)")


def _tlsh_version() -> str:
    if tlsh is None:
        return "none"
    return getattr(tlsh, "__version__", None) or tlsh.version.split()[0]


TOOL_VERSION = f"ssdeep-{ssdeep.__version__} tlsh-{_tlsh_version()}"  # part of the result-cache key


def exact(data: bytes) -> dict[str, str]:
    return {name: hashlib.new(name, data).hexdigest() for name in ("md5", "sha1", "sha256")}


def tlsh_digest(data: bytes) -> str | None:
    """None when TLSH is not computable: under 50 bytes, or too little variety ("TNULL").
    Only called when a TLSH binding is installed (TLSH_MISSING otherwise)."""
    if hasattr(tlsh, "hash"):  # py-tlsh
        digest = tlsh.hash(data)
        return None if digest in ("", "TNULL") else digest
    state = tlsh.Tlsh(data)  # tlsh-python
    state.final()
    return state.hexdigest(1) if state.valid else None  # version 1: the "T1" prefix py-tlsh writes too


def ssdeep_digest(data: bytes) -> str:
    return ssdeep.hash(data)
