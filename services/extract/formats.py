"""Each supported archive format as one lazy stream of `Member`s.

The service applies a single set of safety rules to every format, so the readers here only
describe members (name, kind, compressed size) and hand out a way to read their bytes; they
never write anything to disk and never follow links. Zip goes through pyzipper, the stdlib
zipfile with AES added, so encrypted members open like the others once a password fits.
(7z pushes bytes instead of handing out streams: see sevenzip.py.)
"""

from __future__ import annotations

import bz2
import enum
import functools
import gzip
import io
import lzma
import stat
import struct
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import pyzipper

from services.extract.libarchive_lib import libarchive
from services.extract.passwords import Keyring


class Kind(enum.Enum):
    FILE = "file"
    DIR = "directory"
    LINK = "link"
    SPECIAL = "special"
    ENCRYPTED = "encrypted"
    OVERLAPPING = "overlapping"  # a zip entry whose bytes another entry already uses


@dataclass
class Member:
    name: str
    kind: Kind
    open: Callable[[], IO[bytes]] | None = None
    packed_size: int | None = None  # this member's own compressed bytes, when the format has them
    detail: str = ""  # link target, device type, or why an encrypted member stayed shut
    independent: bool = True  # False: members share one stream, a read error ends the archive


def corrupt_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "this archive (or member) is damaged", as opposed to a bug in this service.
    A function, not a constant: py7zr's and dissect's exception modules import the whole of
    each (0.2 s of every process's start that loads the built-in services), so they load when
    an archive is first opened; under a lock, since the first may be several tasks' threads at
    once, each inside an `except` clause, where an import that fails would replace the error."""
    with _IMPORTING:
        return _corrupt_errors()


_IMPORTING = threading.Lock()


@functools.cache
def _corrupt_errors() -> tuple[type[BaseException], ...]:
    import dissect.fat.exceptions  # noqa: PLC0415 - see the docstring
    import dissect.hypervisor.exceptions  # noqa: PLC0415
    import dissect.ntfs.exceptions  # noqa: PLC0415
    import dissect.volume.exceptions  # noqa: PLC0415
    import py7zr.exceptions  # noqa: PLC0415

    return (
        pyzipper.BadZipFile,
        pyzipper.LargeZipFile,
        py7zr.exceptions.ArchiveError,  # Bad7zFile, CrcError, DecompressionError, unsupported method
        tarfile.TarError,
        EOFError,
        OSError,
        zlib.error,
        lzma.LZMAError,
        NotImplementedError,  # zip compression methods the stdlib lacks (deflate64, …)
        ValueError,
        struct.error,
        libarchive.ArchiveError,  # ISO images, cabinets, RAR, cpio, ar, xar (libarchive_formats.py)
        dissect.fat.exceptions.Error,  # VHD, VHDX and raw disk images (diskimage.py)
        dissect.ntfs.exceptions.Error,
        dissect.volume.exceptions.Error,
        dissect.hypervisor.exceptions.Error,
    )


_COMPRESSED = {
    "gzip": lambda fh: gzip.GzipFile(fileobj=fh),
    "bzip2": bz2.BZ2File,
    "xz": lzma.LZMAFile,
}
_MAGIC = [
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"PK\x07\x08", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7zip"),
    (b"vhdxfile", "vhdx"),
    (b"conectix", "vhd"),  # a dynamic VHD's footer copy; a fixed VHD is a raw image ("img") with a footer
    (b"Rar!\x1a\x07", "rar"),
    (b"MSCF\x00\x00\x00\x00", "cab"),
    (b"xar!", "xar"),
    (b"!<arch>\ndebian", "deb"),
    (b"!<arch>\n", "ar"),
    (b"070701", "cpio"),
    (b"070702", "cpio"),
    (b"070707", "cpio"),
    (b"\xc7\x71", "cpio"),
    (b"\x71\xc7", "cpio"),
]
_ISO_DESCRIPTOR = 0x8001  # "CD001" at the first volume descriptor, after the 32 KiB system area
_DMG_TRAILER = b"koly"  # the last 512 bytes of an Apple UDIF disk image
LIBARCHIVE = ("cab", "iso", "cpio", "ar", "deb")
SEVENZZ = ("rar", "dmg", "udf", "xar")  # read by 7-Zip (sevenzz.py)
DISK_IMAGES = ("vhd", "vhdx", "img")
SUPPORTED = ("zip", "tar", "7zip", *_COMPRESSED, *LIBARCHIVE, *SEVENZZ, *DISK_IMAGES)
MSI_TYPE = "document/installer/windows"
SUFFIXES = {"gzip": (".gz", ".gzip", ".z"), "bzip2": (".bz2", ".bzip2", ".bz"), "xz": (".xz",)}


def detect(data: bytes, file_type: str) -> str | None:
    """The format by magic bytes, else by the dispatcher's type (`archive/tar` has weak magic)."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    if data[257:262] == b"ustar":
        return "tar"
    if data[_ISO_DESCRIPTOR:_ISO_DESCRIPTOR + 5] == b"CD001":
        return "iso"
    if data[-512:-508] == _DMG_TRAILER:
        return "dmg"
    if file_type == MSI_TYPE:
        return "msi"
    fmt = file_type.rsplit("/", 1)[-1]
    return fmt if file_type.startswith("archive/") and fmt in SUPPORTED else None


@dataclass
class SharedStream:
    """The compressed stream a .tar.gz's (or a plain .gz's) members share: its size, and how much
    of it the decompressor has read so far."""

    packed: int
    consumed: Callable[[], int]


def members(data: bytes, fmt: str, archive_name: str, keyring: Keyring) -> tuple[Iterator[Member], SharedStream | None]:
    """The members of `data`, and the compressed stream they share (None for zip and plain tar)."""
    if fmt == "zip":
        return _zip_members(data, keyring), None
    if fmt == "tar":
        return _tar_members(_open_tar(io.BytesIO(data))), None
    raw = io.BytesIO(data)
    shared = SharedStream(len(data), raw.tell)
    tar = _open_tar(raw, quiet=True)
    if tar is not None:
        return _tar_members(tar), shared
    raw.seek(0)
    return _single_stream(raw, fmt, archive_name), shared


def _zip_members(data: bytes, keyring: Keyring) -> Iterator[Member]:
    with pyzipper.AESZipFile(io.BytesIO(data)) as zf:
        overlapping = _overlapping(zf.infolist(), zf.start_dir)
        for info in zf.infolist():
            mode = info.external_attr >> 16
            if id(info) in overlapping:
                yield Member(info.filename, Kind.OVERLAPPING, detail="its bytes overlap another member's (a flat zip bomb)")
            elif info.filename.endswith("/"):  # not is_dir(): that fails on an empty name
                yield Member(info.filename, Kind.DIR)
            elif info.flag_bits & 0x1:
                yield _encrypted_zip_member(zf, info, keyring)
            elif stat.S_ISLNK(mode):
                yield Member(info.filename, Kind.LINK, detail="symlink")
            else:
                yield Member(info.filename, Kind.FILE, lambda info=info: zf.open(info), info.compress_size)


def _overlapping(infos: list[pyzipper.ZipInfo], central_dir: int) -> set[int]:
    """The entries (by id) whose bytes overlap an earlier entry's.

    A flat zip bomb points thousands of central-directory entries at one compressed stream
    (or chains them so each entry's data holds the next one's header), so that a small file
    expands many times over. A member needs at least its 30-byte local header, its name and
    its compressed bytes before the next header (or the central directory) begins.
    """
    starts = sorted({info.header_offset for info in infos})
    next_start = dict(zip(starts, [*starts[1:], central_dir]))
    claimed: set[int] = set()
    found: set[int] = set()
    for info in infos:
        end = info.header_offset + 30 + len(info.orig_filename.encode("utf-8", "surrogateescape")) + info.compress_size
        if info.header_offset in claimed or end > next_start[info.header_offset]:
            found.add(id(info))
        claimed.add(info.header_offset)
    return found


def _encrypted_zip_member(zf: pyzipper.AESZipFile, info: pyzipper.ZipInfo, keyring: Keyring) -> Member:
    """A readable member if a password fits (ZipCrypto or AES), else an ENCRYPTED one."""
    found = keyring.first(lambda password: _zip_unlock(zf, info, password.encode()))
    if found is None:
        return Member(info.filename, Kind.ENCRYPTED, detail=keyring.refusal())
    pwd = found[1]
    return Member(info.filename, Kind.FILE, lambda: zf.open(info, pwd=pwd), info.compress_size)


def _zip_unlock(zf: pyzipper.AESZipFile, info: pyzipper.ZipInfo, pwd: bytes) -> bytes | None:
    """`pwd` if it opens the member, else None.

    Opening checks one byte of the encryption header for ZipCrypto (two for AES), so a wrong
    password passes 1 time in 256; reading one byte more makes the decompressor (or, for a
    small member, the CRC) reject almost all of those. That read is bounded: one input block.
    """
    try:
        with zf.open(info, pwd=pwd) as fh:
            fh.read(1)
    # RuntimeError: pyzipper's "Bad password for file"; KeyError: an AES strength it does not know.
    except (RuntimeError, KeyError, *corrupt_errors()):
        return None
    return pwd


def _open_tar(raw: io.BytesIO, quiet: bool = False) -> tarfile.TarFile | None:
    """Stream mode ("r|*"): one forward pass, compression detected, no member index kept on disk.

    Opening reads the first header, so `quiet` turns "this is not a tar" into None: that is how
    a .tar.gz is told from a plain .gz. A payload of zeros opens as an empty tar; quietly, that
    counts as "not a tar" too, so a gzip of zeros is unpacked (and caught by the ratio limit).
    """
    try:
        tar = tarfile.open(fileobj=raw, mode="r|*")
    except corrupt_errors():
        if quiet:
            return None
        raise
    if quiet and tar.firstmember is None:
        tar.close()
        return None
    return tar


def _tar_members(tar: tarfile.TarFile) -> Iterator[Member]:
    with tar:
        for info in tar:
            if info.isfile():
                yield Member(info.name, Kind.FILE, lambda info=info: tar.extractfile(info), independent=False)
            elif info.isdir():
                yield Member(info.name, Kind.DIR, independent=False)
            elif info.issym() or info.islnk():
                link = "symlink" if info.issym() else "hard link"
                yield Member(info.name, Kind.LINK, detail=f"{link} to {info.linkname!r}", independent=False)
            else:
                yield Member(info.name, Kind.SPECIAL, detail=_special_kind(info), independent=False)


def _special_kind(info: tarfile.TarInfo) -> str:
    if info.ischr():
        return "character device"
    if info.isblk():
        return "block device"
    if info.isfifo():
        return "fifo"
    return f"tar type {info.type!r}"


def _single_stream(raw: io.BytesIO, fmt: str, archive_name: str) -> Iterator[Member]:
    yield Member(
        stream_child_name(archive_name, fmt),
        Kind.FILE,
        lambda: _COMPRESSED[fmt](raw),
        independent=False,
    )


def stream_child_name(archive_name: str, fmt: str) -> str:
    """`notes.txt.gz` → `notes.txt`; a name without the usual suffix gets `.unpacked` instead."""
    lower = archive_name.lower()
    for suffix in SUFFIXES.get(fmt, ()):
        if lower.endswith(suffix) and len(archive_name) > len(suffix):
            return archive_name[: -len(suffix)]
    return f"{archive_name}.unpacked"
