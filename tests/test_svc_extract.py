"""The Extract service on real archives built in memory: formats, limits, hostile names, damage,
passwords.

No NATS: `run_service_once` runs the service the way the runner does. Bombs are built by
streaming zeros through zipfile/gzip/py7zr, so they stay small on disk and in memory.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shutil
import struct
import subprocess
import tarfile
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import py7zr
import pytest
import pyzipper

from archives import Zeros, make_7z, make_aes_zip, make_tar, make_zip, noise
from hostile import stored, write_zip
from zipquine import zip_quine
from services.extract.passwords import Keyring, default_wordlist
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service


def extract(data: bytes, file_type: str, name: str = "sample", **config):
    service = load_service("extract", config_overrides=config or None)
    return run_service_once(service, data, file_type=file_type, name=name)


def extracted(run) -> dict[str, bytes]:
    return {e.name: e.data for e in run.extracted}


def assert_clean(run) -> None:
    """The service neither crashed nor reported heuristics/tags the manifest does not know."""
    assert run.result.error is None
    assert not [s for s in run.result.sections if s.title == "Result warnings"]


# -- formats ---------------------------------------------------------------------------------
def test_zip_with_two_files_is_extracted_listed_and_dropped():
    run = extract(make_zip({"a.txt": b"alpha", "docs/b.txt": b"bravo"}), "archive/zip", "two.zip")
    assert_clean(run)
    assert extracted(run) == {"a.txt": b"alpha", "b.txt": b"bravo"}
    listing = run.section("Extracted 2 files")
    assert listing.heuristic.heur_id == 1 and listing.body_format == "TABLE"
    assert "docs/b.txt" in listing.body
    assert run.result.drop is True
    assert run.heuristics == {1}


def test_nested_zip_comes_out_as_one_child_only():
    inner = make_zip({"deep.txt": b"deep"})
    run = extract(make_zip({"inner.zip": inner}), "archive/zip", "outer.zip")
    assert_clean(run)
    assert extracted(run) == {"inner.zip": inner}


def test_tar_gz_members_come_out():
    dir_info = tarfile.TarInfo("folder")
    dir_info.type = tarfile.DIRTYPE
    data = make_tar([dir_info, ("folder/one.txt", b"one"), ("two.txt", b"two")])
    run = extract(data, "archive/gzip", "bundle.tar.gz")
    assert_clean(run)
    assert extracted(run) == {"one.txt": b"one", "two.txt": b"two"}
    assert run.result.drop is True


@pytest.mark.parametrize("mode", ["w", "w:bz2", "w:xz"])
def test_plain_and_other_compressed_tars(mode):
    run = extract(make_tar([("x.txt", b"x" * 10)], mode), "archive/tar")
    assert extracted(run) == {"x.txt": b"x" * 10}


@pytest.mark.parametrize(
    ("compress", "file_type", "name", "child"),
    [
        (gzip.compress, "archive/gzip", "notes.txt.gz", "notes.txt"),
        (bz2.compress, "archive/bzip2", "notes.txt.bz2", "notes.txt"),
        (lzma.compress, "archive/xz", "notes.txt.xz", "notes.txt"),
        (gzip.compress, "archive/gzip", "blob", "blob.unpacked"),
    ],
)
def test_single_stream_child_is_named_after_the_archive(compress, file_type, name, child):
    run = extract(compress(b"plain text, not a tar"), file_type, name)
    assert_clean(run)
    assert extracted(run) == {child: b"plain text, not a tar"}
    assert run.result.drop is True


def test_continue_after_extract_keeps_the_archive_in_later_stages():
    run = extract(make_zip({"a.txt": b"a"}), "archive/zip", continue_after_extract=True)
    assert extracted(run) == {"a.txt": b"a"}
    assert run.result.drop is False


def test_not_an_archive_is_said_plainly():
    run = extract(b"just some text", "archive/unknown-kind")
    assert_clean(run)
    assert run.section("Not a supported archive")
    assert run.extracted == [] and run.result.drop is False


# -- hostile names and members ------------------------------------------------------------------
def test_path_traversal_names_fire_and_are_sanitised(tmp_path, monkeypatch):
    workdir = tmp_path / "a" / "b"
    workdir.mkdir(parents=True)
    monkeypatch.chdir(workdir)
    names = {"../../etc/passwd": b"root", "/abs/x": b"abs", "C:\\win\\evil.dll": b"dll", "ok.txt": b"ok"}
    run = extract(make_zip(names), "archive/zip")
    assert_clean(run)
    assert extracted(run) == {"passwd": b"root", "x": b"abs", "evil.dll": b"dll", "ok.txt": b"ok"}
    section = run.section("Path traversal")
    assert section.heuristic.heur_id == 3 and section.heuristic.score == 500
    for name in ("../../etc/passwd", "/abs/x", "drive letter", "backslash"):
        assert name in section.body
    assert "ok.txt" not in section.body
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # nothing written anywhere


def test_tar_links_and_devices_are_reported_not_followed():
    def special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        return info

    entries = [
        ("real.txt", b"real"),
        special("shadow", tarfile.SYMTYPE, "/etc/shadow"),
        special("hard", tarfile.LNKTYPE, "real.txt"),
        special("dev", tarfile.CHRTYPE),
        special("pipe", tarfile.FIFOTYPE),
    ]
    run = extract(make_tar(entries), "archive/gzip", "links.tar.gz")
    assert_clean(run)
    assert extracted(run) == {"real.txt": b"real"}
    section = run.section("Links and special members")
    assert section.heuristic.heur_id == 7
    for text in ("/etc/shadow", "hard link", "character device", "fifo"):
        assert text in section.body


def set_encrypted_flag(data: bytes, name: str) -> bytes:
    """Set general-purpose bit 0 (encrypted) on `name` in its local and central headers."""
    buf = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        local = zf.getinfo(name).header_offset
    assert buf[local : local + 4] == b"PK\x03\x04"
    buf[local + 6] |= 0x1
    pos = buf.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = int.from_bytes(buf[pos + 28 : pos + 30], "little")
        if buf[pos + 46 : pos + 46 + name_len] == name.encode():
            buf[pos + 8] |= 0x1
        pos = buf.find(b"PK\x01\x02", pos + 4)
    return bytes(buf)


def test_encrypted_member_is_reported_and_skipped():
    data = make_zip({"secret.doc": b"locked", "open.txt": b"open"}, zipfile.ZIP_STORED)
    run = extract(set_encrypted_flag(data, "secret.doc"), "archive/zip")
    assert_clean(run)
    assert extracted(run) == {"open.txt": b"open"}
    section = run.section("Password-protected")
    assert section.heuristic.heur_id == 5 and "secret.doc" in section.body


# -- limits -------------------------------------------------------------------------------------
def test_zip_bomb_is_stopped_by_the_ratio_limit_quickly():
    buf = io.BytesIO()
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("zeros.bin", "w", force_zip64=True) as member:
            for _ in range(300):  # 300 MiB of zeros, streamed: never in memory at once
                member.write(zeros)
        zf.writestr("fine.txt", b"fine")
    assert len(buf.getvalue()) < 2 * 1024 * 1024
    started = time.monotonic()
    run = extract(buf.getvalue(), "archive/zip", "bomb.zip")
    assert time.monotonic() - started < 10
    assert_clean(run)
    assert extracted(run) == {"fine.txt": b"fine"}  # the bomb member is left out, the rest is not
    section = run.section("Compression bomb")
    assert section.heuristic.heur_id == 2 and section.heuristic.score == 500
    assert "zeros.bin" in section.body


def test_gzip_bomb_is_stopped_on_the_shared_stream():
    zeros = gzip.compress(bytes(20 * 1024 * 1024))
    run = extract(zeros, "archive/gzip", "zeros.gz")
    assert_clean(run)
    assert run.extracted == []
    assert run.section("Compression bomb").heuristic.heur_id == 2


def test_member_size_limit_skips_that_member_only():
    data = make_zip({"big.bin": noise(5000), "small.txt": b"small"})
    run = extract(data, "archive/zip", max_member_bytes=1000)
    assert extracted(run) == {"small.txt": b"small"}
    section = run.section("Size limit reached")
    assert section.heuristic.heur_id == 8 and "big.bin" in section.body


@pytest.mark.parametrize("build, file_type", [(make_zip, "archive/zip"), (make_7z, "archive/7zip")])
def test_total_size_limit_stops_the_archive(build, file_type):
    data = build({"first.bin": noise(800, 1), "second.bin": noise(800, 2), "third.txt": b"t"})
    run = extract(data, file_type, max_total_bytes=1000)
    assert set(extracted(run)) == {"first.bin"}
    assert "total limit" in run.section("Size limit reached").body


def test_too_many_entries():
    data = make_zip({f"f{i}.txt": b"x%d" % i for i in range(5)})
    run = extract(data, "archive/zip", max_entries=3)
    assert_clean(run)
    assert set(extracted(run)) == {"f0.txt", "f1.txt", "f2.txt"}
    section = run.section("Too many entries")
    assert section.heuristic.heur_id == 4 and section.heuristic.score == 100


def test_per_file_child_limit_is_reported_not_silent():
    data = make_zip({f"f{i}.txt": b"x%d" % i for i in range(5)})
    run = run_service_once("extract", data, file_type="archive/zip", max_extracted=2)
    assert len(run.extracted) == 2
    assert "per-file limit" in run.section("Too many entries").body


# -- damage ---------------------------------------------------------------------------------------
def test_truncated_zip_is_a_finding_not_a_crash():
    data = make_zip({"a.txt": noise(4000), "b.txt": noise(4000, 1)})
    run = extract(data[: len(data) // 2], "archive/zip")
    assert_clean(run)
    section = run.section("Corrupt archive")
    assert section.heuristic.heur_id == 6 and "BadZipFile" in section.body
    assert run.result.drop is False  # nothing came out: later stages still see the file


def test_damaged_zip_member_keeps_the_others():
    data = bytearray(make_zip({"a.txt": b"alpha" * 100, "b.txt": b"bravo" * 100}, zipfile.ZIP_STORED))
    data[data.find(b"bravo") + 3] ^= 0xFF  # flip a byte of b.txt: its CRC no longer matches
    run = extract(bytes(data), "archive/zip")
    assert_clean(run)
    assert extracted(run) == {"a.txt": b"alpha" * 100}
    assert "b.txt" in run.section("Corrupt archive").body


def test_truncated_tar_gz_keeps_what_came_before():
    data = make_tar([("first.txt", b"first"), ("second.bin", noise(200_000))])
    run = extract(data[: len(data) // 2], "archive/gzip", "cut.tar.gz")
    assert_clean(run)
    assert extracted(run) == {"first.txt": b"first"}
    assert run.section("Corrupt archive").heuristic.heur_id == 6


def test_truncated_plain_gz_is_corrupt():
    data = gzip.compress(noise(100_000))
    run = extract(data[:-5000], "archive/gzip", "cut.bin.gz")
    assert_clean(run)
    assert run.extracted == []
    assert run.section("Corrupt archive")


# -- 7z -------------------------------------------------------------------------------------------
MiB = 1024 * 1024





def test_7z_with_two_files_is_extracted_listed_and_dropped():
    run = extract(make_7z({"a.txt": b"alpha", "docs/b.txt": b"bravo"}), "archive/7zip", "two.7z")
    assert_clean(run)
    assert extracted(run) == {"a.txt": b"alpha", "b.txt": b"bravo"}
    listing = run.section("Extracted 2 files")
    assert listing.heuristic.heur_id == 1 and "docs/b.txt" in listing.body
    assert run.result.drop is True
    assert run.heuristics == {1}


def test_7z_is_recognised_by_magic_whatever_the_type_says():
    run = extract(make_7z({"a.txt": b"alpha"}), "archive/unknown-kind")
    assert extracted(run) == {"a.txt": b"alpha"}


def test_7z_traversal_names_are_refused_and_nothing_is_written(tmp_path, monkeypatch):
    workdir = tmp_path / "a" / "b"
    workdir.mkdir(parents=True)
    monkeypatch.chdir(workdir)
    run = extract(make_7z({"../evil.txt": b"evil", "ok.txt": b"ok"}), "archive/7zip", "evil.7z")
    assert_clean(run)
    assert extracted(run) == {"ok.txt": b"ok"}
    section = run.section("Path traversal")
    assert section.heuristic.heur_id == 3 and section.heuristic.score == 500
    assert "'../evil.txt'" in section.body and "not extracted" in section.body
    assert "ok.txt" not in section.body
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # nothing written anywhere


def test_7z_bomb_is_stopped_without_expanding_in_memory():
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", filters=[{"id": py7zr.FILTER_LZMA2, "preset": 0}]) as sz:
        sz.writef(Zeros(64 * MiB), "zeros.bin")
        sz.writestr(b"fine", "fine.txt")
    bomb = buf.getvalue()
    assert len(bomb) < 64 * 1024
    started = time.monotonic()
    tracemalloc.start()
    try:
        run = extract(bomb, "archive/7zip", "bomb.7z")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    # About 16 MiB is the LZMA dictionary py7zr's header decoder reserves, whatever the archive;
    # left to itself py7zr would hand over the 64 MiB member as one chunk (a peak near 130 MiB).
    assert peak < 32 * MiB
    assert_clean(run)
    assert run.extracted == []  # the solid stream is abandoned at the bomb
    section = run.section("Compression bomb")
    assert section.heuristic.heur_id == 2 and "zeros.bin" in section.body


def test_7z_member_size_limit_skips_that_member_only():
    data = make_7z({"big.bin": noise(5000), "small.txt": b"small"})
    run = extract(data, "archive/7zip", max_member_bytes=1000)
    assert_clean(run)
    assert extracted(run) == {"small.txt": b"small"}  # decompressed through big.bin, still kept
    section = run.section("Size limit reached")
    assert section.heuristic.heur_id == 8 and "big.bin" in section.body


def test_7z_entry_limit():
    run = extract(make_7z({f"f{i}.txt": b"x%d" % i for i in range(5)}), "archive/7zip", max_entries=3)
    assert set(extracted(run)) == {"f0.txt", "f1.txt", "f2.txt"}
    assert run.section("Too many entries").heuristic.heur_id == 4


@pytest.mark.parametrize("header_encryption", [False, True])
def test_encrypted_7z_opens_with_a_listed_password(header_encryption):
    members = {"dropper.exe": b"MZ" + noise(3000), "readme.txt": b"run me"}
    data = make_7z(members, password="infected", header_encryption=header_encryption)
    run = extract(data, "archive/7zip", "sample.7z")
    assert_clean(run)
    assert extracted(run) == members
    section = run.section("Password protected archive")
    assert section.heuristic.heur_id == 5 and "'infected'" in section.body
    assert run.tags("info.password") == {"infected"}
    assert run.heuristics == {1, 5}


@pytest.mark.parametrize("header_encryption", [False, True])
def test_7z_with_an_unknown_password_stays_shut(header_encryption):
    data = make_7z({"secret.doc": noise(2000)}, password="nobody-knows-it", header_encryption=header_encryption)
    run = extract(data, "archive/7zip", "locked.7z")
    assert_clean(run)
    assert run.extracted == [] and run.result.drop is False
    section = run.section("Password-protected members not extracted")
    assert section.heuristic.heur_id == 5 and "passwords tried" in section.body
    assert ("secret.doc" in section.body) is not header_encryption  # encrypted headers hide names
    assert run.tags("info.password") == set()


def with_key_cycles(data: bytes, cycles: int) -> bytes:
    """`data` with its 7zAES coder asking for 2**cycles key rounds, CRCs fixed so py7zr reads it.

    The coder sits in the plain (not LZMA-encoded) next header: flags, method id 06F10701, the
    properties' size, then the properties, whose first byte holds the cycles in its low 6 bits.
    """
    buf = bytearray(data)
    offset, size = struct.unpack_from("<QQ", buf, 12)  # start header: next header offset and size
    header = buf[32 + offset : 32 + offset + size]
    at = header.index(b"\x06\xf1\x07\x01") + 5
    header[at] = header[at] & 0xC0 | cycles
    buf[32 + offset : 32 + offset + size] = header
    struct.pack_into("<I", buf, 28, zlib.crc32(header))
    struct.pack_into("<I", buf, 8, zlib.crc32(buf[12:32]))
    return bytes(buf)


@pytest.mark.parametrize("header_encryption", [False, True])
def test_7z_asking_for_a_huge_key_derivation_is_not_tried(header_encryption):
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", password="infected", header_encryption=header_encryption) as sz:
        if not header_encryption:
            sz.set_encoded_header_mode(False)  # keep the coder readable in the header
        sz.writestr(b"secret" * 100, "a.txt")
    assert extracted(extract(with_key_cycles(buf.getvalue(), 19), "archive/7zip")) == {"a.txt": b"secret" * 100}
    started = time.monotonic()
    run = extract(with_key_cycles(buf.getvalue(), 62), "archive/7zip")  # 2**62 rounds: never ends
    assert time.monotonic() - started < 5
    assert_clean(run)
    assert run.extracted == []
    section = run.section("Password-protected members not extracted")
    assert section.heuristic.heur_id == 5 and "2^62" in section.body


def test_truncated_7z_is_corrupt_not_a_crash():
    data = make_7z({"a.txt": noise(4000), "b.txt": noise(4000, 1)})
    run = extract(data[: len(data) // 2], "archive/7zip", "cut.7z")
    assert_clean(run)
    assert run.extracted == []
    section = run.section("Corrupt archive")
    assert section.heuristic.heur_id == 6 and "Bad7zFile" in section.body


def test_damaged_7z_keeps_the_members_before_the_damage():
    data = bytearray(make_7z({"first.bin": noise(4000), "second.bin": noise(200_000, 1)}))
    data[32 + 150_000] ^= 0xFF  # inside second.bin's part of the solid stream (after the 32-byte start header)
    run = extract(bytes(data), "archive/7zip", "damaged.7z")
    assert_clean(run)
    assert extracted(run) == {"first.bin": noise(4000)}
    assert run.section("Corrupt archive").heuristic.heur_id == 6


# -- password-protected zip -------------------------------------------------------------------------



def make_zipcrypto_zip(members: dict[str, bytes], password: str, tmp_path: Path) -> bytes:
    """Info-ZIP's `zip -P`: the classic ZipCrypto encryption (no Python library writes it)."""
    for name, data in members.items():
        (tmp_path / name).write_bytes(data)
    subprocess.run(["zip", "-q", "-P", password, "locked.zip", *members], cwd=tmp_path, check=True)
    return (tmp_path / "locked.zip").read_bytes()


def test_aes_zip_opens_with_infected():
    members = {"payload.exe": b"MZ" + noise(5000), "note.txt": b"open me"}
    run = extract(make_aes_zip(members, b"infected"), "archive/zip", "sample.zip")
    assert_clean(run)
    assert extracted(run) == members
    assert run.tags("info.password") == {"infected"}
    section = run.section("Password protected archive")
    assert section.heuristic.heur_id == 5 and section.heuristic.score == 100
    assert run.result.drop is True


def test_zip_password_from_the_submission_parameter():
    data = make_aes_zip({"a.txt": b"alpha" * 100}, b"hunter2")
    run = run_service_once("extract", data, file_type="archive/zip", service_params={"password": "hunter2"})
    assert_clean(run)
    assert extracted(run) == {"a.txt": b"alpha" * 100}
    assert run.tags("info.password") == {"hunter2"}


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs Info-ZIP's zip to write ZipCrypto")
@pytest.mark.parametrize(
    "temp_data",
    [{"passwords": ["s3cret"]}, {"password": "s3cret"}, {"passwords": [7, None, "", "s3cret"]}],
)
def test_zipcrypto_zip_with_a_password_from_temp_data(tmp_path, temp_data):
    members = {"a.txt": b"alpha" * 100, "b.bin": noise(3000)}
    data = make_zipcrypto_zip(members, "s3cret", tmp_path)
    assert extracted(extract(data, "archive/zip")) == {}  # not in the configured list
    run = run_service_once("extract", data, file_type="archive/zip", temp_data=temp_data)
    assert_clean(run)
    assert extracted(run) == members
    assert run.tags("info.password") == {"s3cret"}


def test_zip_with_an_unknown_password_stays_shut():
    data = make_aes_zip({"secret.doc": noise(2000), "other.doc": b"other"}, b"nobody-knows-it")
    run = extract(data, "archive/zip", "locked.zip")
    assert_clean(run)
    assert run.extracted == [] and run.result.drop is False
    section = run.section("Password-protected members not extracted")
    assert section.heuristic.heur_id == 5
    assert "secret.doc" in section.body and "other.doc" in section.body
    assert f"none of the {len(default_wordlist())} passwords tried worked" in section.body
    assert run.tags("info.password") == set()


def test_no_password_to_try_is_said():
    data = make_aes_zip({"secret.doc": b"x"}, b"infected")
    run = extract(data, "archive/zip", passwords=[], wordlist=False)
    assert extracted(run) == {}
    assert "no password to try" in run.section("Password-protected").body


def test_7z_password_from_the_wordlist_beyond_the_first_nine():
    data = make_7z({"a.txt": b"alpha"}, password="1qaz2wsx")
    run = extract(data, "archive/7zip", "locked.7z")
    assert extracted(run) == {"a.txt": b"alpha"}
    assert run.tags("info.password") == {"1qaz2wsx"}


def test_encrypted_zip_bomb_is_still_capped():
    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(b"infected")
        with zf.open("zeros.bin", "w", force_zip64=True) as member:
            for _ in range(50):
                member.write(bytes(MiB))
    run = extract(buf.getvalue(), "archive/zip", "bomb.zip")
    assert_clean(run)
    assert run.extracted == []
    assert run.section("Compression bomb").heuristic.heur_id == 2
    assert run.tags("info.password") == {"infected"}


def test_many_members_with_an_unknown_password_make_one_bounded_section():
    data = make_aes_zip({f"doc{i}.txt": b"x%d" % i for i in range(120)}, b"nobody-knows-it")
    run = extract(data, "archive/zip", "many.zip")
    assert_clean(run)
    assert run.extracted == []
    body = run.section("Password-protected members not extracted").body
    assert "doc0.txt" in body and "… and 70 more" in body


def test_keyring_tries_what_worked_first_and_stops_guessing_after_a_full_miss():
    keyring = Keyring(["a", "b", "c"])
    assert keyring.first(lambda p: p.upper() if p == "b" else None) == ("b", "B")
    tried: list[str] = []
    keyring.first(lambda p: tried.append(p))  # append returns None: nothing fits
    assert tried == ["b", "a", "c"]
    tried.clear()
    assert keyring.first(lambda p: tried.append(p)) is None
    assert tried == ["b"]  # only what worked before: the others already missed on a member
    assert keyring.worked == ["b"]
    assert Keyring([]).refusal() == "no password to try"


def test_member_limit_in_a_tar_stream_ends_the_archive_quickly():
    """Skipping a tar member means decompressing it: past the member limit, the stream is left."""
    zeros = 200 * 1024 * 1024
    info = tarfile.TarInfo("zeros.bin")
    info.size = zeros
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1) as gz:
        gz.write(info.tobuf())
        for _ in range(zeros // (1024 * 1024)):
            gz.write(bytes(1024 * 1024))
        gz.write(bytes(1024))
    started = time.monotonic()
    run = extract(buf.getvalue(), "archive/gzip", "zeros.tar.gz", max_member_bytes=1024 * 1024, max_ratio=1e9)
    assert time.monotonic() - started < 5
    assert_clean(run)
    assert run.extracted == []
    assert "the rest of the stream was not read" in run.section("Size limit reached").body


def test_flat_zip_bomb_entries_sharing_one_stream_are_not_read():
    """Fifield's flat bomb: many central-directory entries over one compressed member."""
    member = stored("zeros.bin", bytes(4096))
    data = write_zip([member, stored("fine.txt", b"fine")], central=[0, 0, 0, 1])
    run = extract(data, "archive/zip", "flat.zip")
    assert_clean(run)
    assert extracted(run) == {"zeros.bin": bytes(4096), "fine.txt": b"fine"}  # the first claim is read, once
    section = run.section("Compression bomb")
    assert section.heuristic.score == 500 and section.body.count("overlap another member") == 2


def test_ordinary_zips_have_no_overlapping_members():
    data = make_zip({f"f{i}.txt": noise(3000, i) for i in range(20)}, zipfile.ZIP_STORED)
    assert not [s for s in extract(data, "archive/zip").result.sections if s.title == "Compression bomb"]


def test_empty_archive_and_empty_members_are_said():
    assert "holds no files" in extract(make_zip({}), "archive/zip").section("Empty archive").body
    run = extract(make_zip({"empty.txt": b"", "full.txt": b"full"}), "archive/zip")
    assert extracted(run) == {"full.txt": b"full"}
    section = run.section("Empty members not extracted")
    assert section.heuristic is None and "'empty.txt'" in section.body


def test_a_zip_that_contains_itself_is_a_bomb_not_a_child():
    data = zip_quine()
    run = extract(data, "archive/zip", "self.zip")
    assert_clean(run)
    assert run.extracted == []
    assert "the archive itself" in run.section("Compression bomb").body


@pytest.mark.parametrize("compress", [lambda data: gzip.compress(data, 1), lambda data: make_tar([("zeros.bin", data)])])
def test_a_stream_past_the_size_limit_at_a_bomb_ratio_is_a_bomb(compress):
    """Its whole-stream ratio is not known yet, but what the decompressor has read tells it."""
    data = compress(bytes(64 * 1024 * 1024))
    run = extract(data, "archive/gzip", "zeros.gz", max_member_bytes=2 * 1024 * 1024)  # far below 100x the stream
    assert_clean(run)
    assert run.extracted == []
    assert "bytes from its first" in run.section("Compression bomb").body
