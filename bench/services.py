#!/usr/bin/env python3
"""Per-service time on a sample set: every built-in service on every file it accepts.

    .venv/bin/python bench/services.py [--repeat 3] [--json] [EXTRA_DIR ...]

Prints figures; it is not a test. The sample set is the committed demo samples (samples/) plus
files built here at run time, so nothing hostile-looking is committed: the EICAR test string,
a real Windows PE (pip's distlib launcher) and a doctored copy of it (UPX section name, W+X,
future timestamp), a .docx with a DDE field, a .docm with an auto-exec macro, a PDF with
OpenAction JavaScript (built with the tests' builders in tests/), a 7z archive,
an AES zip with the password "infected", 1 MiB of random bytes and 8 MiB of text; and one
specimen of each of issue 14's formats (tests/formats.py: disk images, CAB, MSI, cpio, .deb,
e-mails, shortcuts, OneNote, HTML smuggling, carved payloads, ...) unless `--no-formats`.

Time is the service's own `execute` (as the runner measures it, `ServiceResult.elapsed`), no
NATS: the mesh's own costs are bench/mesh.py's job. Each file runs `--repeat` times; the table
shows the median per file, then totals per service.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):  # run from anywhere; the tests' archive builders are reused
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import anyio  # noqa: E402
import pefile  # noqa: E402
from pip._vendor import distlib  # noqa: E402

from archives import make_7z, make_aes_zip  # noqa: E402
from formats import specimens  # noqa: E402
from officedocs import field_simple, paragraph, vba_project, word_document  # noqa: E402
from pdfdocs import with_javascript, written  # noqa: E402
from dispatcher.identify import identify  # noqa: E402
from schemas.taxonomy import matching_types  # noqa: E402
from services.sdk.harness import run_service_once_async  # noqa: E402
from services.sdk.loader import builtin_services, load_service  # noqa: E402

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
LAUNCHER = Path(distlib.__file__).parent / "t64.exe"
DDE = 'DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"'
MACRO = 'Sub AutoOpen()\n    Shell "powershell -enc SQBFAFgA", vbHide\nEnd Sub\n'
def doctored_pe(clean: bytes) -> bytes:
    pe = pefile.PE(data=clean)
    first = pe.sections[0]
    first.Name = b"UPX0\0\0\0\0"
    first.Characteristics |= 0x80000000 | 0x20000000  # MEM_WRITE | MEM_EXECUTE
    pe.FILE_HEADER.TimeDateStamp = int(time.time()) + 10 * 365 * 86400
    return bytes(pe.write())


def build_samples(folder: Path) -> None:
    clean_pe = LAUNCHER.read_bytes()
    text = (ROOT / "samples" / "readme.txt").read_bytes()
    built = {
        "eicar.com": EICAR,
        "launcher.exe": clean_pe,
        "doctored.exe": doctored_pe(clean_pe),
        "dde.docx": word_document(paragraph("Update links?") + field_simple(DDE)),
        "macro.docm": word_document(paragraph("Enable content"), vba=vba_project({"Module1": MACRO})),
        "javascript.pdf": written(with_javascript("app.alert('doc');", "this.exportDataObject({cName: 'a'});")),
        "archive.7z": make_7z({"a.txt": text, "b.exe": clean_pe}),
        "locked.zip": make_aes_zip({"inside.txt": text}, b"infected"),
        "random.bin": os.urandom(1 << 20),
        "big.txt": (text * ((8 << 20) // len(text) + 1))[: 8 << 20],
    }
    for name, data in built.items():
        (folder / name).write_bytes(data)


def sample_files(folders: list[Path]) -> list[tuple[str, bytes, str]]:
    files = []
    for folder in folders:
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".py"):
            data = path.read_bytes()
            files.append((path.name, data, identify(data)))
    return files


async def measure(files: list[tuple[str, bytes, str]], repeat: int) -> list[dict]:
    rows = []
    for name in builtin_services():
        service = load_service(name)
        accepted = set(matching_types(service.manifest.accepts, service.manifest.rejects))
        for file_name, data, file_type in files:
            if file_type not in accepted:
                continue
            times, last = [], None
            for _ in range(repeat):
                last = await run_service_once_async(service, data, file_type=file_type, name=file_name)
                times.append(last.result.elapsed)
            rows.append({
                "service": name, "file": file_name, "type": file_type, "bytes": len(data),
                "ms": round(statistics.median(times) * 1000, 2), "score": last.result.score,
                "sections": len(last.result.sections), "children": len(last.extracted),
                "error": last.result.error.type.value if last.result.error else "",
            })
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'service':<13}{'file':<16}{'type':<30}{'bytes':>10}{'ms':>10}{'score':>7}{'sect':>6}{'kids':>6}  error")
    for r in rows:
        print(f"{r['service']:<13}{r['file']:<16}{r['type']:<30}{r['bytes']:>10}{r['ms']:>10.2f}{r['score']:>7}"
              f"{r['sections']:>6}{r['children']:>6}  {r['error']}")
    print()
    print(f"{'service':<13}{'files':>6}{'total ms':>11}{'mean ms':>10}{'max ms':>10}{'MB/s':>9}")
    for name in dict.fromkeys(r["service"] for r in rows):
        mine = [r for r in rows if r["service"] == name]
        total_ms = sum(r["ms"] for r in mine)
        megabytes = sum(r["bytes"] for r in mine) / 1e6
        rate = megabytes / (total_ms / 1000) if total_ms else float("inf")
        print(f"{name:<13}{len(mine):>6}{total_ms:>11.1f}{total_ms / len(mine):>10.2f}{max(r['ms'] for r in mine):>10.2f}{rate:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("extra", nargs="*", type=Path, help="more folders of samples")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-formats", action="store_true", help="leave out issue 14's format specimens")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-samples-") as built:
        build_samples(Path(built))
        if not args.no_formats:
            for specimen in specimens():
                (Path(built) / specimen.name).write_bytes(specimen.data)
        files = sample_files([ROOT / "samples", Path(built), *args.extra])
        rows = anyio.run(measure, files, args.repeat)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
