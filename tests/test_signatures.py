"""The signature table gives every file the type libmagic and the rules would give it.

A corpus is built here, at test time, of the formats the table knows (and of look-alikes it must
leave to libmagic); each file is identified twice, with the table and with libmagic alone.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import random
import struct
import sys
from pathlib import Path

import pip._vendor.distlib
import pytest

from dispatcher import identify as identify_module
from dispatcher.identify import identify
from dispatcher.signatures import describe
from tests.archives import make_7z, make_aes_zip, make_tar, make_zip
from tests.officedocs import compound_file, paragraph, vba_project, word_document
from tests.pdfdocs import one_page, written

WORDS = ("alpha beta gamma delta report invoice note meeting free skip wide moov begin diff true "
         "lorem ipsum dolor sit amet the of and to in is for on that by this with from").split()


def sentences(rng: random.Random, marks: str = ".") -> bytes:
    lines = []
    for _ in range(rng.randint(1, 40)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 14))]
        if rng.random() < 0.5:
            words[0] = words[0].capitalize()
        lines.append(" ".join(words) + rng.choice(marks))
    return ("\n".join(lines) + rng.choice(["\n", "", "\r\n"])).encode()


def pe_variants() -> dict[str, bytes]:
    folder = Path(pip._vendor.distlib.__file__).parent
    found: dict[str, bytes] = {}
    for path in sorted(folder.glob("*.exe")):
        data = path.read_bytes()
        found[path.name] = data
        offset = struct.unpack_from("<I", data, 0x3C)[0]
        dll = bytearray(data)
        struct.pack_into("<H", dll, offset + 22, struct.unpack_from("<H", data, offset + 22)[0] | 0x2000)
        found[path.name + "-dll"] = bytes(dll)
        rom = bytearray(data)
        struct.pack_into("<H", rom, offset + 24, 0x107)
        found[path.name + "-rom"] = bytes(rom)
        found[path.name + "-cut"] = data[:0x80]
    found["dos"] = b"MZ" + bytes(200)
    return found


def corpus() -> dict[str, bytes]:
    rng = random.Random(18)
    text = b"bench note 1 " + b"lorem ipsum dolor sit amet " * 40
    files = {
        "elf-self": Path(sys.executable).resolve().read_bytes()[:65536],
        "elf32": b"\x7fELF\x01\x01\x01" + bytes(60), "elf64": b"\x7fELF\x02\x01\x01" + bytes(60),
        "elf-bad-class": b"\x7fELF\x05\x01\x01" + bytes(60),
        "macho64": b"\xcf\xfa\xed\xfe" + bytes(60), "macho32": b"\xce\xfa\xed\xfe" + bytes(60),
        "fat-or-java": b"\xca\xfe\xba\xbe" + bytes(60),
        "pdf": written(one_page()), "pdf-odd": b"%PDF-garbage",
        "gzip": gzip.compress(text), "bzip2": bz2.compress(text), "bzh-text": b"BZhello world\n",
        "xz": lzma.compress(text), "7z": make_7z({"a.txt": text}),
        "rar4": b"Rar!\x1a\x07\x00" + bytes(40), "rar5": b"Rar!\x1a\x07\x01\x00" + bytes(40),
        "ole": compound_file({"WordDocument": text}), "vba": vba_project({"Module1": "Sub A()\nEnd Sub\n"}),
        "zip": make_zip({"a.txt": text, "b.exe": b"MZ"}), "zip-stored": make_zip({"readme.txt": text}, 0),
        "zip-aes": make_aes_zip({"inside.txt": text}, b"infected"),
        "zip-jar": make_zip({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n", "A.class": b"\xca\xfe\xba\xbe"}),
        "zip-apk": make_zip({"AndroidManifest.xml": b"\x03\x00", "classes.dex": b"dex\n035\x00"}),
        "zip-odt": make_zip({"mimetype": b"application/vnd.oasis.opendocument.text"}, 0),
        "docx": word_document(paragraph("hello")), "docm": word_document(paragraph("x"), vba=vba_project({"M": "Sub B()\nEnd Sub\n"})),
        "tar": make_tar([("a.txt", text)], mode="w"), "tgz": make_tar([("a.txt", text)]),
        "bench-text": text, "crlf": b"one line\r\nanother line\r\n", "one-word": b"x",
        "long-line": b"a" * 5000, "uuencoded": b"begin 644 foo\nM86)C\n`\nend\n",
        "quicktime-word": b"Get free stuff now\n", "mp4-word": b"abcdftypisom text\n",
        "python": b"import os\nprint(os.name)\n", "shell": b"#!/bin/sh\necho hi\n", "html": b"<html><body>hi</body></html>\n",
        "json": b'{"a": 1, "b": [1, 2]}\n', "csv": b"a,b,c\n1,2,3\n4,5,6\n", "mail": b"From: a@b.c\nTo: d@e.f\nSubject: hi\n\nbody\n",
        "batch": b"@echo off\r\necho hi\r\n", "netpbm": b"P1\n2 2\n0 1\n1 0\n", "flash-word": b"FWSa text\n",
        "random": random.Random(1).randbytes(1024), "utf8": "naïve café\n".encode(), "latin1": "naïve\n".encode("latin-1"),
        "xml": b'<?xml version="1.0"?>\n<a/>\n', "ps1": b"Write-Host 'hi'\n$x = 1\n",
    }
    files.update(pe_variants())
    for i in range(150):
        files[f"prose-{i}"] = sentences(rng, ".?" if i % 3 else ".")
    return files


CORPUS = corpus()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_table_gives_the_type_libmagic_gives(name, monkeypatch):
    data = CORPUS[name]
    fast = identify(data)
    monkeypatch.setattr(identify_module, "describe", lambda head: None)
    assert fast == identify(data), f"{name}: signature table says {describe(data)!r}"


def test_the_common_formats_skip_libmagic():
    """The table answers for most of the corpus (else it saves nothing), and declines look-alikes."""
    answered = {name for name, data in CORPUS.items() if describe(data) is not None}
    for name in ("pdf", "gzip", "bzip2", "xz", "7z", "rar5", "zip", "elf-self", "macho64", "bench-text", "prose-0"):
        assert name in answered, name
    # An OLE file may be a Word document, an MSI or an Outlook message: only libmagic tells which.
    for name in ("docx", "zip-jar", "zip-apk", "fat-or-java", "python", "html", "csv", "mail", "bzh-text", "dos", "ole"):
        assert name not in answered, name
    assert len(answered) > 0.7 * len(CORPUS)
