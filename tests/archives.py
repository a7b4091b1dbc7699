"""Archives built in memory for tests and benchmarks: zip, tar, 7z, AES zip, and incompressible noise."""

from __future__ import annotations

import io
import random
import tarfile
import zipfile

import py7zr
import pyzipper


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(entries: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tf.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tf.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


def noise(size: int, seed: int = 0) -> bytes:
    """Incompressible bytes: no ratio heuristic can fire on them."""
    return random.Random(seed).randbytes(size)


def make_7z(members: dict[str, bytes], **options) -> bytes:
    """A 7z (solid, LZMA2) of `members`; options go to SevenZipFile (password=, header_encryption=).

    `_writestr` skips py7zr's own refusal of hostile names, which a test of them needs.
    """
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", **options) as sz:
        for name, data in members.items():
            sz._writestr(data, name)
    return buf.getvalue()


class Zeros(io.BufferedIOBase):
    """`size` zero bytes read on demand, so py7zr can compress a bomb without holding it."""

    def __init__(self, size: int) -> None:
        self._size, self._pos = size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence] + offset
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        n = self._size - self._pos if n is None or n < 0 else min(n, self._size - self._pos)
        self._pos += n
        return bytes(n)


def make_aes_zip(members: dict[str, bytes], password: bytes) -> bytes:
    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(password)
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
