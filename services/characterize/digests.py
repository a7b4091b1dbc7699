"""Hashes of the whole file: exact ones to look it up, fuzzy ones to find its near-duplicates.

The fuzzy hashes need native libraries, bound by packages with wheels for Linux x86_64 only:
ssdeep-wheel bundles libfuzzy (the reference C implementation: about 8 ms per MiB here, where
the pure-Python ppdeep took 0.4 s per MiB and minutes on large low-variety files); tlsh-python
binds Trend Micro's TLSH (py-tlsh binds the same library and agrees, but ships no wheels: it is
used where it was built). Where a binding is missing, its hash is "not computed" with the reason.
"""

from __future__ import annotations

import hashlib

try:
    import ssdeep
except ImportError:
    ssdeep = None
try:
    import tlsh
except ImportError:
    tlsh = None

NO_WHEEL = "has wheels for Linux x86_64 only"
MISSING = {
    "ssdeep": f"not computed: no ssdeep library on this platform (ssdeep-wheel {NO_WHEEL}; "
              "`pip install ssdeep` builds one against a system libfuzzy)",
    "tlsh": f"not computed: no TLSH library on this platform (tlsh-python {NO_WHEEL}; "
            "`pip install py-tlsh` builds one where a C++ compiler is installed)",
}
TOO_LITTLE = "not computable: under 50 bytes or too little variety"


def _version(module, attribute: str = "__version__") -> str:
    if module is None:
        return "none"
    return getattr(module, attribute, None) or module.version.split()[0]


TOOL_VERSION = f"ssdeep-{_version(ssdeep)} tlsh-{_version(tlsh)}"  # part of the result-cache key: a new binding recomputes


def exact(data: bytes) -> dict[str, str]:
    return {name: hashlib.new(name, data).hexdigest() for name in ("md5", "sha1", "sha256")}


def fuzzy(data: bytes) -> dict[str, str]:
    """ssdeep and TLSH of `data`, each the digest or the reason there is none."""
    return {"ssdeep": MISSING["ssdeep"] if ssdeep is None else ssdeep.hash(data),
            "tlsh": MISSING["tlsh"] if tlsh is None else (_tlsh(data) or TOO_LITTLE)}


def _tlsh(data: bytes) -> str | None:
    """None when TLSH is not computable: under 50 bytes, or too little variety ("TNULL")."""
    if hasattr(tlsh, "hash"):  # py-tlsh
        digest = tlsh.hash(data)
        return None if digest in ("", "TNULL") else digest
    state = tlsh.Tlsh(data)  # tlsh-python
    state.final()
    return state.hexdigest(1) if state.valid else None  # version 1: the "T1" prefix py-tlsh writes too
