"""Safe forms of hostile bytes for download: CaRT (Assemblyline's neutered format) or a zip with
the password `infected`, so that saving a sample does not leave a runnable or auto-opened file
(nor trip the downloader's antivirus) until someone unpacks it on purpose.

CaRT (the `cart` package) wraps the bytes in RC4 under a published default key with the original
name and digests in its header: `cart -d` restores them. The zip is AES-256 (pyzipper, as the
extract service uses), which 7-Zip and most archive tools open; the classic ZipCrypto is not written.
"""

from __future__ import annotations

import enum
import io
import re

import cart
import pyzipper

ZIP_PASSWORD = b"infected"


class Format(enum.StrEnum):
    CART = "cart"
    ZIP = "zip"
    RAW = "raw"  # the bytes themselves: only on explicit choice (and, in the web front, for analysts)


def safe_name(name: str) -> str:
    """A name that cannot carry a path, a control character or an executable-looking final extension."""
    base = re.sub(r"[\x00-\x1f\x7f/\\]", "_", name).strip(" .") or "file"
    return base[:200]


def neutered(data: bytes, name: str, fmt: Format) -> tuple[bytes, str]:
    """(the bytes to hand out, the file name to suggest) for `fmt`."""
    name = safe_name(name)
    if fmt is Format.CART:
        out = io.BytesIO()
        cart.pack_stream(io.BytesIO(data), out, optional_header={"name": name})
        return out.getvalue(), f"{name}.cart"
    if fmt is Format.ZIP:
        out = io.BytesIO()
        with pyzipper.AESZipFile(out, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as archive:
            archive.setpassword(ZIP_PASSWORD)
            archive.writestr(name, data)
        return out.getvalue(), f"{name}.zip"
    return data, name


def unpack_cart(data: bytes) -> tuple[bytes, dict]:
    """The original bytes and the header of a CaRT file (for tests and `sluice`'s own use)."""
    out = io.BytesIO()
    header, _ = cart.unpack_stream(io.BytesIO(data), out)
    return out.getvalue(), header or {}
