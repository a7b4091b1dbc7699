"""Real Office documents built in memory for the office service tests.

olefile reads compound files but cannot write new ones, so `compound_file` is a small writer
for [MS-CFB] version 3 (512-byte sectors, a FAT, a directory, and a mini stream for streams
under 4096 bytes). On top of it `vba_streams`/`vba_project` lay out a VBA project as Office
does ([MS-OVBA]: PROJECT stream, VBA/_VBA_PROJECT, VBA/dir and one stream per module, the
source compressed with the MS-OVBA algorithm), and `ole_package` an embedded Package object.
`word_document` zips the parts of a .docx/.docm; `encrypt_ooxml` encrypts one as Office does.
Each builder returns bytes; nothing touches disk."""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field

SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
FREESECT, ENDOFCHAIN, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
STORAGE, STREAM, ROOT = 1, 2, 5


# -- [MS-CFB] compound files -------------------------------------------------------------------
@dataclass
class _Entry:
    name: str
    kind: int
    data: bytes = b""
    children: list[_Entry] = field(default_factory=list)
    sid: int = 0
    start: int = ENDOFCHAIN
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM


def _tree(streams: dict[str, bytes]) -> _Entry:
    """The storage tree from paths such as "VBA/dir" (storages are made as needed)."""
    root = _Entry("Root Entry", ROOT)
    for path, data in streams.items():
        node = root
        *storages, leaf = path.split("/")
        for name in storages:
            found = next((c for c in node.children if c.name == name), None)
            if found is None:
                found = _Entry(name, STORAGE)
                node.children.append(found)
            node = found
        node.children.append(_Entry(leaf, STREAM, data))
    return root


def _cfb_order(entry: _Entry) -> tuple[int, str]:
    """Siblings are compared by name length first, then by upper-cased name ([MS-CFB] 2.6.4)."""
    return len(entry.name), entry.name.upper()


def _link(entry: _Entry, flat: list[_Entry]) -> None:
    """Number the entries and chain each storage's children as a (valid, unbalanced) search tree."""
    entry.sid = len(flat)
    flat.append(entry)
    kids = sorted(entry.children, key=_cfb_order)
    for kid in kids:
        _link(kid, flat)
    if kids:
        entry.child = kids[0].sid
        for smaller, larger in zip(kids, kids[1:]):
            smaller.right = larger.sid


def _sectors(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size].ljust(size, b"\0") for i in range(0, len(data), size)]


def _chain(table: list[int], first: int, count: int) -> int:
    """Mark `count` consecutive sectors from `first` as one chain; return its start (or ENDOFCHAIN)."""
    for i in range(count):
        table[first + i] = first + i + 1 if i < count - 1 else ENDOFCHAIN
    return first if count else ENDOFCHAIN


def _dir_entry(entry: _Entry, size: int) -> bytes:
    name = entry.name.encode("utf-16-le") + b"\0\0" if entry.name else b""
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        name, len(name), entry.kind, 1, entry.left, entry.right, entry.child,
        b"\0" * 16, 0, 0, 0, entry.start, size,
    )


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A compound file holding `streams` ({"Storage/Stream": bytes}), readable by olefile."""
    root = _tree(streams)
    flat: list[_Entry] = []
    _link(root, flat)
    small = [e for e in flat if e.kind == STREAM and len(e.data) < MINI_CUTOFF]
    large = [e for e in flat if e.kind == STREAM and len(e.data) >= MINI_CUTOFF]

    # The mini stream: small streams packed in 64-byte mini sectors, chained in the mini FAT.
    minifat: list[int] = []
    mini_data = b""
    for entry in small:
        count = len(_sectors(entry.data, MINI_SECTOR))
        first = len(minifat)
        minifat.extend([FREESECT] * count)
        entry.start = _chain(minifat, first, count)
        mini_data += b"".join(_sectors(entry.data, MINI_SECTOR))
    root.data = mini_data

    # Regular sectors, in order: large streams, the mini stream, the mini FAT, the directory, the FAT.
    blobs = [e.data for e in large] + [mini_data]
    minifat_bytes = struct.pack(f"<{len(minifat)}I", *minifat) if minifat else b""
    dir_count = -(-len(flat) * 128 // SECTOR)
    data_count = sum(len(_sectors(b, SECTOR)) for b in blobs) + len(_sectors(minifat_bytes, SECTOR))
    fat_count = 1
    while fat_count * (SECTOR // 4) < data_count + dir_count + fat_count:
        fat_count += 1
    if fat_count > 109:
        raise ValueError("too large for a header-only DIFAT; keep test files under ~7 MB")
    fat = [FREESECT] * (fat_count * SECTOR // 4)
    body: list[bytes] = []

    def place(data: bytes) -> int:
        sectors = _sectors(data, SECTOR)
        start = _chain(fat, len(body), len(sectors))
        body.extend(sectors)
        return start

    for entry in large:
        entry.start = place(entry.data)
    root.start = place(mini_data)
    minifat_start = place(minifat_bytes)
    dir_start = len(body)
    # Unused directory slots must read as empty entries with no siblings or child.
    unused = _dir_entry(_Entry("", 0, start=0), 0)
    entries = b"".join(_dir_entry(e, len(e.data)) for e in flat) + unused * (dir_count * SECTOR // 128 - len(flat))
    place(entries)
    fat_start = len(body)
    for i in range(fat_count):
        fat[fat_start + i] = FATSECT
    body.extend(_sectors(struct.pack(f"<{len(fat)}I", *fat), SECTOR))

    difat = list(range(fat_start, fat_start + fat_count)) + [FREESECT] * (109 - fat_count)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII109I",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\0" * 16, 0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6,
        0, fat_count, dir_start, 0, MINI_CUTOFF,
        minifat_start, len(_sectors(minifat_bytes, SECTOR)),
        ENDOFCHAIN, 0, *difat,
    )
    return header + b"".join(body)


# -- [MS-OVBA] VBA projects ---------------------------------------------------------------------
def ovba_compress(data: bytes) -> bytes:
    """A CompressedContainer ([MS-OVBA] 2.4.1) that any decompressor reads back as `data`.

    Full 4096-byte chunks are stored as raw chunks; the last, shorter chunk as a compressed
    chunk made only of literal tokens (a flag byte of 0 before every 8 bytes). Both are valid
    encodings; neither needs the copy-token matching a real compressor does.
    """
    out = bytearray(b"\x01")
    for start in range(0, len(data), 4096):
        chunk = data[start:start + 4096]
        if len(chunk) == 4096:
            out += struct.pack("<H", 0x3000 | 4095) + chunk
            continue
        tokens = b"".join(b"\0" + chunk[i:i + 8] for i in range(0, len(chunk), 8))
        out += struct.pack("<H", 0xB000 | (len(tokens) + 2 - 3)) + tokens
    return bytes(out)


def _record(rec_id: int, payload: bytes) -> bytes:
    return struct.pack("<HI", rec_id, len(payload)) + payload


def _dir_stream(project: str, modules: list[str]) -> bytes:
    """The decompressed `VBA/dir` stream: project information, no references, the module list."""
    name = project.encode("cp1252")
    out = bytearray()
    out += _record(0x0001, struct.pack("<I", 1))                   # PROJECTSYSKIND: 32-bit Windows
    out += _record(0x0002, struct.pack("<I", 0x409))               # PROJECTLCID
    out += _record(0x0014, struct.pack("<I", 0x409))               # PROJECTLCIDINVOKE
    out += _record(0x0003, struct.pack("<H", 1252))                # PROJECTCODEPAGE
    out += _record(0x0004, name)                                   # PROJECTNAME
    out += _record(0x0005, b"") + _record(0x0040, b"")             # PROJECTDOCSTRING (+ unicode)
    out += _record(0x0006, b"") + _record(0x003D, b"")             # PROJECTHELPFILEPATH (1 and 2)
    out += _record(0x0007, struct.pack("<I", 0))                   # PROJECTHELPCONTEXT
    out += _record(0x0008, struct.pack("<I", 0))                   # PROJECTLIBFLAGS
    out += struct.pack("<HIIH", 0x0009, 4, 1, 0)                   # PROJECTVERSION (size field reserved = 4)
    out += _record(0x000C, b"") + _record(0x003C, b"")             # PROJECTCONSTANTS (+ unicode)
    out += _record(0x000F, struct.pack("<H", len(modules)))        # PROJECTMODULES
    out += _record(0x0013, struct.pack("<H", 0xFFFF))              # PROJECTCOOKIE
    for module in modules:
        raw, wide = module.encode("cp1252"), module.encode("utf-16-le")
        out += _record(0x0019, raw) + _record(0x0047, wide)        # MODULENAME, MODULENAMEUNICODE
        out += _record(0x001A, raw) + _record(0x0032, wide)        # MODULESTREAMNAME (+ unicode)
        out += _record(0x001C, b"") + _record(0x0048, b"")         # MODULEDOCSTRING (+ unicode)
        out += _record(0x0031, struct.pack("<I", 0))               # MODULEOFFSET: source at offset 0
        out += _record(0x001E, struct.pack("<I", 0))               # MODULEHELPCONTEXT
        out += _record(0x002C, struct.pack("<H", 0xFFFF))          # MODULECOOKIE
        out += struct.pack("<HI", 0x0021, 0)                       # MODULETYPE: procedural module
        out += struct.pack("<HI", 0x002B, 0)                       # MODULE terminator
    out += struct.pack("<HI", 0x0010, 0)                           # dir stream terminator
    return bytes(out)


def vba_streams(modules: dict[str, str], project: str = "VBAProject", root: str = "") -> dict[str, bytes]:
    """The streams of a VBA project with one procedural module per entry of `modules` ({name: source}).

    `root` is the storage holding the project: "" in a vbaProject.bin, "Macros/" in a Word .doc,
    "_VBA_PROJECT_CUR/" in an Excel .xls. Module streams hold only the compressed source
    (MODULEOFFSET 0, no compiled P-code), as a project saved by another VBA host would; Office
    recompiles such a project on open.
    """
    lines = ['ID="{00000000-0000-0000-0000-000000000000}"']
    lines += [f"Module={name}" for name in modules]
    lines += [f'Name="{project}"', 'HelpContextID="0"', 'VersionCompatible32="393222000"', ""]
    streams = {
        f"{root}PROJECT": "\r\n".join(lines).encode("cp1252"),
        f"{root}VBA/_VBA_PROJECT": struct.pack("<HHBH", 0x61CC, 0xFFFF, 0x00, 0x0000),
        f"{root}VBA/dir": ovba_compress(_dir_stream(project, list(modules))),
    }
    for name, source in modules.items():
        streams[f"{root}VBA/{name}"] = ovba_compress(module_source(name, source).encode("cp1252"))
    return streams


def module_source(name: str, source: str) -> str:
    """A module's source as stored: the VB_Name attribute line first, CRLF line ends."""
    return f'Attribute VB_Name = "{name}"\r\n' + source.replace("\r\n", "\n").replace("\n", "\r\n")


def vba_project(modules: dict[str, str], project: str = "VBAProject") -> bytes:
    """A vbaProject.bin, the part a .docm/.xlsm keeps its macros in."""
    return compound_file(vba_streams(modules, project))


def ole10native(file_name: str, payload: bytes, source_path: str = "") -> bytes:
    """An \\x01Ole10Native stream as Office's Packager writes it ([MS-OLEDS] OLENativeStream).

    A size, the file name, its source path and a temp path as NUL-terminated strings, then the
    file's bytes.
    """
    source = (source_path or f"C:\\Users\\user\\Desktop\\{file_name}").encode("cp1252") + b"\0"
    temp = f"C:\\Users\\user\\AppData\\Local\\Temp\\{file_name}".encode("cp1252") + b"\0"
    body = (struct.pack("<H", 2) + file_name.encode("cp1252") + b"\0" + source
            + struct.pack("<II", 0x00030000, len(temp)) + temp + struct.pack("<I", len(payload)) + payload)
    return struct.pack("<I", len(body)) + body


def ole_package(file_name: str, payload: bytes) -> bytes:
    """An embedded "Package" OLE object (oleObject1.bin): a compound file carrying one file."""
    return compound_file({"\x01Ole10Native": ole10native(file_name, payload)})


# -- OOXML (zip) documents ------------------------------------------------------------------------
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"


def paragraph(text: str) -> str:
    return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"


def field_simple(instruction: str, shown: str = "") -> str:
    """A Word field as <w:fldSimple w:instr=...> (the compact form of a field)."""
    instr = instruction.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return f'<w:p><w:fldSimple w:instr="{instr}"><w:r><w:t>{shown}</w:t></w:r></w:fldSimple></w:p>'


def field_complex(instruction: str) -> str:
    """A Word field as begin / instrText / end runs (the form Word writes for DDEAUTO)."""
    instr = instruction.replace("&", "&amp;").replace("<", "&lt;")
    return ('<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
            f'<w:r><w:instrText xml:space="preserve"> {instr} </w:instrText></w:r>'
            '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>!</w:t></w:r>'
            '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>')


def word_document(body: str, parts: dict[str, bytes] | None = None, vba: bytes | None = None) -> bytes:
    """A .docx (or .docm with `vba`): the minimal package Word opens, plus any extra `parts`."""
    parts = dict(parts or {})
    main_type = ("application/vnd.ms-word.document.macroEnabled.main+xml" if vba
                 else "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml")
    overrides = f'<Override PartName="/word/document.xml" ContentType="{main_type}"/>'
    doc_rels = ""
    if vba is not None:
        parts["word/vbaProject.bin"] = vba
        overrides += '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
        doc_rels = ('<Relationship Id="rIdVba" Type="http://schemas.microsoft.com/office/2006/relationships/'
                    'vbaProject" Target="vbaProject.bin"/>')
    elif any(name.endswith(".bin") for name in parts):
        overrides += '<Default Extension="bin" ContentType="application/vnd.openxmlformats-officedocument.oleObject"/>'
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            f'<Default Extension="xml" ContentType="application/xml"/>{overrides}</Types>'),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{PKG_RELS}">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>'),
        "word/document.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W_NS}" '
            f'xmlns:r="{R_NS}"><w:body>{body}</w:body></w:document>'),
        "word/_rels/document.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{PKG_RELS}">'
            f'{doc_rels}</Relationships>'),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text.encode("utf-8"))
        for name, data in parts.items():
            zf.writestr(name, data)
    return buf.getvalue()


def encrypt_ooxml(package: bytes, password: str) -> bytes:
    """`package` encrypted the way Office does (ECMA-376 agile encryption, in a compound file).

    msoffcrypto 6.1 cannot decrypt its own output for packages under 4096 bytes (the
    EncryptedPackage stream then lands in the mini stream), so such packages are refused here.
    """
    from msoffcrypto.format.ooxml import OOXMLFile

    if len(package) < MINI_CUTOFF:
        raise ValueError("give encrypt_ooxml a package of at least 4096 bytes (add an incompressible part)")
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(package)).encrypt(password, out)
    return out.getvalue()
