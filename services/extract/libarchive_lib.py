"""Which libarchive the `libarchive` (libarchive-c) binding loads, chosen before it is imported.

libarchive-c is a ctypes binding: it needs a libarchive shared library at run time. Debian's
(`libarchive13`) reads the most formats (xar needs its XML parser), so it is used when the system
has one; otherwise the copy the `archi` wheel ships (libarchive 3.8, built without xar), so
that a plain `pip install` opens ISO, CAB, cpio and ar with no system package. Import
`libarchive` only through this module.
"""

from __future__ import annotations

import ctypes.util
import glob
import os
from pathlib import Path


def _bundled() -> str | None:
    try:
        import archi
    except ImportError:
        return None
    found = sorted(glob.glob(str(Path(archi.__file__).parent / "archi.libs" / "libarchive-*.so*")))
    return found[0] if found else None


def _choose() -> str | None:
    """The operator's LIBARCHIVE, else the system's library, else the wheel's copy."""
    if os.environ.get("LIBARCHIVE"):
        return os.environ["LIBARCHIVE"]
    system = ctypes.util.find_library("archive")
    return system or _bundled()


LIBRARY = _choose()
if LIBRARY:
    os.environ.setdefault("LIBARCHIVE", LIBRARY)

import libarchive  # noqa: E402  (after LIBARCHIVE is set: the binding loads the library on import)

__all__ = ["LIBRARY", "libarchive"]
