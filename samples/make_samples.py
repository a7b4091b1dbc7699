#!/usr/bin/env python3
"""Rebuild the demo samples in this folder: `python3 samples/make_samples.py`.

All harmless: documentation addresses (203.0.113.0/24, example.com/.net/.org) and plain text.
The output is byte-for-byte reproducible (fixed timestamps, no owner names), so rebuilding
does not change the committed files.

    readme.txt      text with URLs, one to an .exe on a raw IP        → iocs scores it
    nested.zip      nested.zip > inner.zip > deeper.tar.gz > notes.txt → extract, three levels
    report.tar.gz   a couple of text files                            → extract
    strings.bin     binary noise around a UTF-16LE URL                → iocs on an unknown type
"""

from __future__ import annotations

import gzip
import io
import random
import tarfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold

README = """\
Sluice demo sample: a harmless text file with a few network indicators for the iocs service.

Project page:  https://www.example.com/sluice/docs
Mirror:        ftp://mirror.example.org/pub/sluice/
Contact:       analyst@example.net

A link of the kind droppers use (a documentation address; nothing is served there):
    http://203.0.113.7/updates/setup.exe
A look-alike domain under a suspicious TLD: login-example.top
"""

NOTES = """\
Notes from three archive levels down.
More at http://downloads.example.com/tools/readme.html
"""


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def strings_blob() -> bytes:
    noise = random.Random(1).randbytes
    url = "https://cdn.example.com/assets/update.ps1".encode("utf-16-le")
    return noise(2048) + b"\x00\x00" + url + b"\x00\x00" + noise(2048)


def build() -> dict[str, bytes]:
    deeper = tar_gz_bytes({"notes.txt": NOTES.encode()})
    inner = zip_bytes({"deeper.tar.gz": deeper})
    return {
        "readme.txt": README.encode(),
        "nested.zip": zip_bytes({"inner.zip": inner}),
        "report.tar.gz": tar_gz_bytes(
            {
                "report/summary.txt": b"Quarterly summary: nothing to see here.\n",
                "report/contacts.txt": b"Team lead: lead@example.org\nWiki: https://wiki.example.org/team\n",
            }
        ),
        "strings.bin": strings_blob(),
    }


def main() -> None:
    for name, data in build().items():
        (HERE / name).write_bytes(data)
        print(f"{name:15} {len(data):6} bytes")


if __name__ == "__main__":
    main()
