"""Disk images (VHD, VHDX, raw MBR/GPT or bare-volume images) as a stream of `Member`s: the files
of their FAT12/16/32 and NTFS volumes, read with dissect.

Mounting a VHD or an .img is one double-click on Windows, which is why they carry LNK and
script payloads past mail filters that do not open them. dissect reads each layer from the
bytes in memory (no mount, nothing written): the virtual disk (dissect.hypervisor), the
partition table (dissect.volume), the file system (dissect.fat). Members are read lazily
through the disk's block map, so the shared budget sees the bytes as they come out: a sparse
disk that declares gigabytes of zeros is a ratio bomb like any other. NTFS reparse points (symlinks,
junctions) are reported as links, never followed; exFAT volumes are named in a finding, not read.

dissect is imported on first use, not with the service: it was 0.17 s of every process's start
that loads the built-in services (`sluice scan` starts one per core), for a reader most scans
never need.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

from services.extract.formats import Kind, Member, SharedStream

MAX_DIRECTORIES = 10_000  # directories walked per volume: a looped directory tree ends here


class UnreadableVolume(ValueError):
    """A volume whose file system this reader does not handle (named in the finding)."""


def _disk(data: bytes, fmt: str) -> BinaryIO:
    """The virtual disk's contents as a stream (a raw image is its own disk)."""
    from dissect.hypervisor import vhd, vhdx  # noqa: PLC0415 - dissect on first use (a module note says why)

    raw = io.BytesIO(data)
    if fmt == "vhdx":
        return vhdx.VHDX(raw)
    if fmt == "vhd" or data[-512:-504] == b"conectix":
        return vhd.VHD(raw)
    return raw


def _volumes(disk: BinaryIO) -> Iterator[tuple[str, BinaryIO]]:
    """(label, stream) of each volume: the partitions, or the whole disk when it has none."""
    disk.seek(0)
    boot = disk.read(512)
    disk.seek(0)
    if _filesystem(boot) is not None:
        yield "volume", disk
        return
    from dissect.util.stream import RangeStream  # noqa: PLC0415 - on first use (module note)
    from dissect.volume.disk import Disk  # noqa: PLC0415

    for index, partition in enumerate(Disk(disk).partitions):
        if partition.size:
            yield f"partition{index + 1}", RangeStream(disk, partition.offset, partition.size)


def _filesystem(boot: bytes) -> str | None:
    if boot[3:11] == b"EXFAT   ":
        return "exfat"
    if boot[3:11] == b"NTFS    ":
        return "ntfs"
    if boot[510:512] == b"\x55\xaa" and (boot[54:59] == b"FAT12" or boot[54:59] == b"FAT16" or boot[82:87] == b"FAT32"):
        return "fat"
    return None


def members(data: bytes, fmt: str) -> tuple[Iterator[Member], SharedStream]:
    """The files of every volume in the image; the image file is the stream they share."""
    return _members(data, fmt), SharedStream(len(data), lambda: 0)


def _members(data: bytes, fmt: str) -> Iterator[Member]:
    from dissect.fat import fat  # noqa: PLC0415 - on first use (module note)
    from dissect.ntfs import ntfs  # noqa: PLC0415

    disk = _disk(data, fmt)
    for label, volume in _volumes(disk):
        volume.seek(0)
        kind = _filesystem(volume.read(512))
        volume.seek(0)
        if kind == "fat":
            yield from _fat(fat.FATFS(volume).get("/"))
        elif kind == "ntfs":
            yield from _ntfs(ntfs.NTFS(volume).mft.get("/"))
        else:
            raise UnreadableVolume(f"{label}: {kind or 'unknown'} file system not read (FAT12/16/32 and NTFS only)")


def _fat(root: fat.DirectoryEntry) -> Iterator[Member]:
    """Every directory and file under `root`, depth first; a directory met twice is walked once."""
    pending = [("", root)]
    seen: set[int] = set()
    while pending and len(seen) < MAX_DIRECTORIES:
        prefix, directory = pending.pop()
        seen.add(directory.cluster)
        for entry in directory.iterdir():
            name = entry.name
            if name in (".", "..") or entry.is_volume_id():
                continue
            path = f"{prefix}{name}"
            if entry.is_directory():
                yield Member(path, Kind.DIR)
                if entry.cluster not in seen:
                    pending.append((path + "/", entry))
            else:
                yield Member(path, Kind.FILE, lambda entry=entry: entry.open())


_DOS_ONLY_NAME = 2  # an 8.3 alias of a long name: the same file listed a second time
_FIRST_USER_RECORD = 24  # records 0-23 are NTFS's own metadata files ($MFT, $Bitmap, ...)


def _ntfs(root: ntfs.MftRecord) -> Iterator[Member]:
    """Every directory and file under `root`, depth first; NTFS's metadata files are left out."""
    pending = [("", root)]
    seen: set[int] = set()
    while pending and len(seen) < MAX_DIRECTORIES:
        prefix, directory = pending.pop()
        seen.add(directory.segment)
        for entry in directory.iterdir():
            name = entry.attribute.file_name
            if entry.attribute.flags == _DOS_ONLY_NAME or name == ".":
                continue
            record = entry.dereference()
            if record.segment < _FIRST_USER_RECORD:
                continue
            path = f"{prefix}{name}"
            if record.is_reparse_point():
                target = record.reparse_point_substitute_name or record.reparse_point_name or "?"
                yield Member(path, Kind.LINK, detail=f"reparse point to {target!r}")
            elif record.is_dir():
                yield Member(path, Kind.DIR)
                if record.segment not in seen:
                    pending.append((path + "/", record))
            else:
                yield Member(path, Kind.FILE, lambda record=record: record.open())
