"""The hostile-input corpus, built at test time (nothing binary is committed).

Each case is a named builder returning the bytes to submit. Bombs are built without ever
holding their expanded size: one MiB of zeros is deflated once and the piece repeated (bzip2
and xz: whole streams, concatenated), so a "1 GiB" member costs about a kilobyte per MiB.
The zip writer is our own (a few structs) because the flat bomb needs what no library
writes: thousands of central-directory entries pointing at the same compressed member.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import inspect
import io
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from archives import make_7z, make_tar, make_zip, noise
from formats import (
    UDIF_ZLIB, make_cab, make_cpio, make_dmg, make_fat, make_iso, make_lnk, make_mbr_disk, make_onenote, make_rar4_stored,
    make_rar5_stored, make_udf, make_vhd, make_vhdx, make_xar, udif,
)
from zipquine import zip_quine

MIB = 1024 * 1024
GIB = 1024 * MIB
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@dataclass(frozen=True)
class Case:
    """One hostile input: its name and what it is (for the table), the file name it is sent as,
    and its builder (given the run's token when it takes one)."""

    name: str
    what: str
    file_name: str  # "{token}" in it is replaced by the run's token
    build: Callable[..., bytes]
    params: dict[str, int] = field(default_factory=dict)  # SubmissionParams overrides, when the case needs them

    def make(self, token: str) -> bytes:
        return self.build(token) if inspect.signature(self.build).parameters else self.build()

    def sent_as(self, token: str) -> str:
        return self.file_name.replace("{token}", token)


CASES: list[Case] = []  # in the order they are defined below


def case(name: str, file_name: str, **params: int) -> Callable[[Callable[..., bytes]], Callable[..., bytes]]:
    """Register a builder as a case; the first line of its docstring says what it is."""

    def register(build: Callable[..., bytes]) -> Callable[..., bytes]:
        CASES.append(Case(name, (build.__doc__ or name).strip().splitlines()[0], file_name, build, params))
        return build

    return register


# -- zeros, compressed without being expanded --------------------------------------------------


@functools.cache
def _deflate_mib_of_zeros() -> tuple[bytes, bytes]:
    """One MiB of zeros as raw deflate blocks ending on a full flush (so the piece can be
    repeated: each copy starts with an empty window), and the final empty block."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = comp.compress(bytes(MIB)) + comp.flush(zlib.Z_FULL_FLUSH)
    return piece, comp.flush()


@functools.cache
def _crc_of_zeros(size: int, start: int = 0) -> int:
    """The CRC-32 of `start`'s data followed by `size` zeros (a whole number of MiB)."""
    crc, block = start, bytes(MIB)
    for _ in range(size // MIB):
        crc = zlib.crc32(block, crc)
    return crc


def deflated_zeros(size: int) -> bytes:
    """A raw deflate stream of `size` zero bytes (a whole number of MiB)."""
    piece, end = _deflate_mib_of_zeros()
    return piece * (size // MIB) + end


# -- a minimal zip writer (stored members, or a precompressed deflate stream) ------------------


@dataclass(frozen=True)
class ZipMember:
    name: bytes
    packed: bytes
    size: int
    crc: int
    method: int = zipfile.ZIP_DEFLATED
    mode: int = 0o100644  # the unix mode, kept in the high half of external_attr


def stored(name: str, data: bytes, mode: int = 0o100644) -> ZipMember:
    return ZipMember(name.encode(), data, len(data), zlib.crc32(data), zipfile.ZIP_STORED, mode)


def write_zip(members: list[ZipMember], central: list[int] | None = None) -> bytes:
    """A zip of `members`; `central` lists, per central-directory entry, the member it points at
    (default: each member once). Pointing many entries at one member makes a flat bomb."""
    out = io.BytesIO()
    offsets = []
    for m in members:
        offsets.append(out.tell())
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, m.method, 0, 0x21, m.crc, len(m.packed), m.size,
                              len(m.name), 0) + m.name + m.packed)
    start = out.tell()
    entries = central if central is not None else list(range(len(members)))
    for index in entries:
        m = members[index]
        out.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 0x0314, 20, 0, m.method, 0, 0x21, m.crc, len(m.packed),
                              m.size, len(m.name), 0, 0, 0, 0, m.mode << 16, offsets[index]) + m.name)
    end = out.tell()
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), end - start, start, 0))
    return out.getvalue()


def zeros_member(name: str, size: int) -> ZipMember:
    return ZipMember(name.encode(), deflated_zeros(size), size, _crc_of_zeros(size))


# -- the cases ---------------------------------------------------------------------------------


@case("flat zip bomb", "flat-bomb.zip")
def flat_zip_bomb() -> bytes:
    """10,000 central-directory entries all pointing at one 1 GiB member: 10 TiB declared, ~1 MiB sent."""
    return write_zip([zeros_member("zeros.bin", GIB)], central=[0] * 10_000)


@case("nested zip bomb", "nested-bomb.zip")
def nested_zip_bomb() -> bytes:
    """42.zip's shape: 5 levels of 16 copies each over a 1 GiB member, 1 PiB in all."""
    level = write_zip([zeros_member("zeros.bin", GIB)])
    for depth in range(5):
        level = make_zip({f"level{depth}-{copy:02}.zip": level for copy in range(16)})
    return level


@case("gzip bomb", "zeros.bin.gz")
def gzip_bomb() -> bytes:
    """A plain .gz of 4 GiB of zeros (4 MiB sent)."""
    size = 4 * GIB
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + deflated_zeros(size) + struct.pack("<LL", _crc_of_zeros(size), size & 0xFFFFFFFF)


@case("bzip2 bomb", "zeros.bin.bz2")
def bzip2_bomb() -> bytes:
    """64 concatenated bzip2 streams of 64 MiB of zeros each: 4 GiB from about 3 KiB."""
    return bz2.compress(bytes(64 * MIB), 9) * 64


@case("xz bomb", "zeros.bin.xz")
def xz_bomb() -> bytes:
    """256 concatenated xz streams of 16 MiB of zeros each: 4 GiB from about 650 KiB."""
    return lzma.compress(bytes(16 * MIB), preset=0) * 256


@case("tar.gz bomb", "zeros.tar.gz")
def tar_gz_bomb() -> bytes:
    """A .tar.gz whose one member is 2 GiB of zeros (the tar header and the zeros share one gzip stream)."""
    size = 2 * GIB
    info = tarfile.TarInfo("zeros.bin")
    info.size = size
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    body = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = body.compress(header) + body.flush(zlib.Z_FULL_FLUSH)
    tail = body.compress(bytes(1024)) + body.flush()  # the two empty end-of-archive blocks
    piece, _ = _deflate_mib_of_zeros()
    crc = zlib.crc32(bytes(1024), _crc_of_zeros(size, zlib.crc32(header)))
    raw = head + piece * (size // MIB) + tail
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + struct.pack("<LL", crc, (len(header) + size + 1024) & 0xFFFFFFFF)


@case("copies of one zip", "copies.zip")
def copies_of_one_zip() -> bytes:
    """A zip holding 300 copies of one inner zip that itself holds 300 copies of one text."""
    inner = make_zip({f"copy-{i:03}.txt": b"the same text in every copy\n" for i in range(300)})
    return make_zip({f"inner-{i:03}.zip": inner for i in range(300)})


@case("zip that contains itself", "self.zip")
def self_containing_zip() -> bytes:
    """A zip quine: its one member is, byte for byte, the zip itself (a cycle with no end)."""
    return zip_quine()


@case("zip of 3 copies of itself", "self.zip")
def self_containing_zip_thrice() -> bytes:
    """A zip quine listing its member three times: three copies of itself one level down."""
    return zip_quine(copies=3)


@case("50-level nesting", "deep.zip")
def nesting_50() -> bytes:
    """A zip in a zip ... 50 levels deep, a text file at the bottom."""
    data = b"the bottom of a 50-level archive\n"
    name = "bottom.txt"
    for level in range(50, 0, -1):
        data, name = make_zip({name: data}), f"level-{level:02}.zip"
    return data


@case("10,000 entries, max_files 20", "many-capped.zip", max_files=20)
@case("10,000 entries", "many.zip")
def entries_10000() -> bytes:
    """10,000 distinct small members (the capped run is submitted with max_files=20)."""
    return write_zip([stored(f"entry-{i:05}.txt", f"entry {i}\n".encode()) for i in range(10_000)])


@case("path traversal (zip)", "traversal.zip")
def traversal_zip(token: str) -> bytes:
    """Member names that climb out, are absolute, or use a drive letter or backslashes."""
    return write_zip([
        stored(f"../../../../hostile-escape-{token}.txt", b"climbed out\n"),
        stored(f"/tmp/hostile-absolute-{token}.txt", b"absolute\n"),
        stored(f"C:\\Windows\\hostile-drive-{token}.txt", b"drive letter\n"),
        stored(f"..\\..\\hostile-backslash-{token}.txt", b"backslashes\n"),
        stored(f"ok/../../hostile-middle-{token}.txt", b"dot-dot in the middle\n"),
    ])


@case("path traversal (tar)", "traversal.tar.gz")
def traversal_tar(token: str) -> bytes:
    """'../..' and absolute member names in a .tar.gz."""
    return make_tar([
        (f"../../../../hostile-escape-{token}.tar.txt", b"climbed out of a tar\n"),
        (f"/tmp/hostile-absolute-{token}.tar.txt", b"absolute in a tar\n"),
    ])


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@case("path traversal (7z)", "traversal.7z")
def traversal_7z(token: str) -> bytes:
    """'../..' and absolute member names in a 7z, beside one ordinary member."""
    return make_7z({f"../../../../hostile-escape-{token}.7z.txt": b"climbed out of a 7z\n",
                    f"/tmp/hostile-absolute-{token}.7z.txt": b"absolute in a 7z\n", "fine.txt": b"fine\n"})


@case("hostile submission name", "../../../../hostile-name-{token}.txt\x1b[2J\n.gz")
def hostile_name() -> bytes:
    """A .gz sent under a climbing name with control characters (its child is named after it)."""
    return gzip.compress(b"named to climb out\n", mtime=0)


@case("symlinks in tar", "links.tar.gz")
def tar_symlinks(token: str) -> bytes:
    """Links out of the tree, then a file written "through" a link, then a device and a fifo."""
    device = tarfile.TarInfo("dev-null")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    fifo = tarfile.TarInfo("a-fifo")
    fifo.type = tarfile.FIFOTYPE
    return make_tar([
        _link("passwd", "/etc/passwd"),
        _link("up", "../../../../tmp"),
        (f"up/hostile-through-link-{token}.txt", b"written through a symlink\n"),
        _link("hard", "/etc/shadow", tarfile.LNKTYPE),
        device,
        fifo,
        ("plain.txt", b"the one plain member\n"),
    ])


@case("symlink in zip", "link.zip")
def zip_symlink(token: str) -> bytes:
    """A symlink member to /etc/passwd, then a file "under" it."""
    return write_zip([stored("link", b"/etc/passwd", 0o120777),
                      stored(f"link/hostile-via-zip-link-{token}.txt", b"through a zip symlink\n")])


@case("executable members", "run.zip")
def executables(token: str) -> bytes:
    """Scripts and an ELF header that would leave a marker file if anything ran them."""
    marker = f"/tmp/hostile-executed-{token}"
    return write_zip([
        stored("run.sh", f"#!/bin/sh\ntouch {marker}\n".encode(), 0o100755),
        stored("run.py", f"#!/usr/bin/env python3\nopen({marker!r}, 'w').close()\n".encode(), 0o100755),
        stored("setup.py", f"open({marker!r}, 'w').close()\n".encode()),
        stored("payload.elf", b"\x7fELF\x02\x01\x01" + bytes(57) + b"touch " + marker.encode(), 0o100755),
    ])


def _sample_zip() -> bytes:
    return make_zip({f"member-{i}.txt": f"member {i} of a healthy zip\n".encode() * 50 for i in range(5)})


@case("truncated zip", "half.zip")
def truncated_zip() -> bytes:
    """The first half of a zip (no central directory)."""
    data = _sample_zip()
    return data[: len(data) // 2]


@case("corrupt zip", "flipped.zip")
def corrupt_zip() -> bytes:
    """Compressed bytes flipped in the middle of a member: bad deflate data or a CRC mismatch."""
    data = bytearray(_sample_zip())
    for offset in range(60, 90):
        data[offset] ^= 0x5A
    return bytes(data)


@case("truncated tar.gz", "cut.tar.gz")
def truncated_tar_gz() -> bytes:
    """Two thirds of a .tar.gz of four members."""
    data = make_tar([(f"member-{i}.txt", noise(4096, i)) for i in range(4)])
    return data[: len(data) * 2 // 3]


@case("truncated 7z", "cut.7z")
def truncated_7z() -> bytes:
    """A 7z missing its last 40 bytes (its header)."""
    data = make_7z({"a.txt": b"seven zip member\n" * 100, "b.txt": noise(2048)})
    return data[: len(data) - 40]


@case("zip magic + noise", "noise.zip")
def zip_magic_then_noise() -> bytes:
    """A zip's magic number, then 64 KiB of random bytes."""
    return b"PK\x03\x04" + noise(64 * 1024, 7)


@case("gzip magic + noise", "noise.gz")
def gzip_magic_then_noise() -> bytes:
    """A gzip header, then 64 KiB of random bytes."""
    return b"\x1f\x8b\x08\x00" + noise(64 * 1024, 8)


@case("empty zip", "empty.zip")
def empty_zip() -> bytes:
    """A valid zip with no members."""
    return write_zip([])


@case("zip of empty files", "empties.zip")
def zip_of_empty_files() -> bytes:
    """A zip of 20 members of 0 bytes."""
    return make_zip({f"empty-{i}.txt": b"" for i in range(20)})


# -- the containers of issue 14 (disk images, cabinets, cpio), read through libarchive --------
@case("CAB bomb", "bomb.cab")
def cab_bomb() -> bytes:
    """An MSZIP cabinet of 64 MiB of zeros (about 112 KiB sent)."""
    return make_cab({"zeros.bin": bytes(64 * MIB)})


@case("path traversal (cpio)", "initrd-{token}.cpio")
def traversal_cpio(token: str) -> bytes:
    """'../..' and absolute names, a symlink out of the tree and a device node in a cpio."""
    return make_cpio([(f"../../tmp/{token}-cpio-climb", b"climbed", 0o100644),
                      (f"/tmp/{token}-cpio-absolute", b"absolute", 0o100644),
                      ("etc-link", b"/etc", 0o120777), ("etc-link/passwd-" + token, b"through the link", 0o100644),
                      ("dev-null", b"", 0o20666)])


@case("path traversal (RAR)", "invoice-{token}.rar")
def traversal_rar(token: str) -> bytes:
    """'../..', absolute and drive-letter names in a RAR 4 archive."""
    return make_rar4_stored({f"../../tmp/{token}-rar-climb": b"climbed", f"/tmp/{token}-rar-absolute": b"absolute",
                             f"C:\\Users\\Public\\{token}-rar.bat": b"@echo off"})


@case("truncated ISO", "cut.iso")
def truncated_iso() -> bytes:
    """The first half of an ISO 9660 image with Joliet names."""
    data = make_iso({"readme.txt": b"hello\n" * 1000, "setup.exe": noise(40_000, 12)})
    return data[: len(data) // 2]


@case("truncated VHD", "cut.vhd")
def truncated_vhd() -> bytes:
    """The first half of a dynamic VHD holding a FAT volume (its block table points past the end)."""
    data = make_vhd(make_fat({"a.txt": b"disk member\n" * 100}))
    return data[: len(data) // 2]


@case("truncated VHDX", "cut.vhdx")
def truncated_vhdx() -> bytes:
    """The first 4.5 MiB of a dynamic VHDX holding a FAT volume (its block table points past the end)."""
    data = make_vhdx(make_mbr_disk(make_fat({"a.txt": b"disk member\n" * 100, "b.bin": noise(20_000, 16)})))
    return data[: 4 * MIB + MIB // 2]


@case("truncated CAB", "cut.cab")
def truncated_cab() -> bytes:
    """Two thirds of an MSZIP cabinet of two members."""
    data = make_cab({"a.txt": b"cabinet member\n" * 2000, "b.bin": noise(20_000, 13)})
    return data[: len(data) * 2 // 3]


@case("DMG bomb", "zeros.dmg")
def dmg_bomb() -> bytes:
    """A DMG declaring 1 GiB: one zlib chunk of 1 MiB of zeros that its block table lists 1,024 times (56 KiB sent)."""
    piece = zlib.compress(bytes(MIB), 9)
    return udif(piece, [(UDIF_ZLIB, index * 2048, 2048, 0, len(piece)) for index in range(1024)])


@case("path traversal (RAR 5, AES, encrypted headers)", "invoice-{token}-locked.rar")
def traversal_rar5_encrypted(token: str) -> bytes:
    """'../..', absolute and drive-letter names hidden in a RAR 5 whose headers are encrypted (password 'infected')."""
    return make_rar5_stored({f"../../tmp/{token}-rar5-climb": b"climbed", f"/tmp/{token}-rar5-absolute": b"absolute",
                             f"C:\\Users\\Public\\{token}-rar5.bat": b"@echo off"}, password="infected", encrypt_headers=True)


@case("path traversal (xar)", "installer-{token}.pkg")
def traversal_xar(token: str) -> bytes:
    """A macOS installer package (xar) with a climbing name, an absolute name and a symlink to /etc."""
    return make_xar({f"../../tmp/{token}-xar-climb": b"climbed", f"/tmp/{token}-xar-absolute": b"absolute"},
                    links={"Payload/etc": "/etc"})


@case("truncated RAR 5 (AES)", "cut-locked.rar")
def truncated_rar5() -> bytes:
    """Two thirds of a RAR 5 of two AES-encrypted members (password 'infected')."""
    data = make_rar5_stored({"a.txt": b"rar member\n" * 300, "b.bin": noise(4000, 14)}, password="infected")
    return data[: len(data) * 2 // 3]


@case("hostile RAR comment", "commented-locked.rar")
def hostile_rar_comment() -> bytes:
    """A RAR 5 (encrypted headers, password 'infected') whose 200 KiB comment forges 7zz's listing lines and escapes."""
    forged = b"\x1b]0;owned\x07\x1b[2J\n}\n\n----------\nPath = forged.exe\nSize = 4\nFolder = -\n\n"
    return make_rar5_stored({"real.txt": b"real member"}, password="infected", encrypt_headers=True,
                            comment=forged * 2800)


@case("truncated DMG", "cut.dmg")
def truncated_dmg() -> bytes:
    """A zlib-compressed DMG of a FAT volume whose data fork is cut to half (its table and trailer kept)."""
    data = make_dmg(make_fat({"a.txt": b"dmg member\n" * 100}))
    table = data.rfind(b"<?xml")
    return data[: table // 2] + data[table:]


@case("truncated UDF", "cut-udf.img")
def truncated_udf() -> bytes:
    """The first half of a UDF-only image (no ISO 9660 side) of two files."""
    data = make_udf({"a.txt": b"udf member\n" * 500, "b.bin": noise(20_000, 15)})
    return data[: len(data) // 2]


# -- the new readers of issue 14: e-mail, OneNote, shortcuts, images -------------------------
@case("e-mail of 5,000 parts", "parts.eml")
def email_many_parts() -> bytes:
    """A multipart e-mail of 5,000 one-line attachments (only the first are walked, and it says so)."""
    parts = b"".join(b"--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=f%d.bin\n\n"
                     b"part %d\n" % (i, i) for i in range(5000))
    return b"From: a@b.example\nSubject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n" + parts + b"--b--\n"


@case("OneNote lying lengths", "lie.one")
def onenote_lying_lengths() -> bytes:
    """A OneNote section whose embedded files declare lengths of 2^63 and past the end of the file."""
    data = bytearray(make_onenote([b"MZ" + bytes(100), b"second"]))
    first = data.find(bytes.fromhex("E716E3BD65261145A4C48D4D0B7A9EAC"))
    data[first + 16:first + 24] = struct.pack("<Q", 2**63)
    return bytes(data)


@case("truncated LNK", "cut.lnk")
def truncated_lnk() -> bytes:
    """The first 100 bytes of a shortcut to cmd.exe with long arguments."""
    return make_lnk(r"C:\Windows\System32\cmd.exe", "/c " + "A" * 500, machine_id="m1")[:100]


@case("HTML of 100,000 handlers", "handlers.html")
def html_many_handlers() -> bytes:
    """A page of 100,000 elements each with an event handler and a link (each kind is capped)."""
    return b"<html><body>" + b"".join(b'<a href="https://e%d.example/" onclick="f(%d)">x</a>' % (i, i)
                                     for i in range(100_000)) + b"</body></html>"


@case("PNG lying chunk length", "lie.png")
def png_lying_chunk() -> bytes:
    """A PNG whose first chunk declares 4 GiB, then a PE header (carve must not trust the length)."""
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 0xFFFFFFF0) + b"IHDR" + bytes(13) + b"MZ" + bytes(200)


@case("PNG pixel bomb", "pixels.png")
def png_pixel_bomb() -> bytes:
    """A 1-bit PNG of 20,000 x 20,000 pixels (400 M pixels from about 50 KiB)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, format="PNG")
    return out.getvalue()


@case("empty file", "empty.bin")
def empty_file() -> bytes:
    """0 bytes."""
    return b""


@case("random bytes", "random.bin")
def random_bytes() -> bytes:
    """1 MiB of random bytes."""
    return noise(1 * MIB, 11)


def write_table(folder: str | None, name: str, rows: list[tuple[str, ...]], note: str = "") -> None:
    """Write `rows` (the first is the header) as a Markdown table to folder/name, then `note`; no folder, nothing."""
    if not folder:
        return
    lines = ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    lines += ["", note] if note else []
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
