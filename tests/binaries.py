"""Executables built at test time for the binary and pe services and the detection corpus:
hand-laid ELF and Mach-O files (no compiler on the box), Windows launchers from pip's distlib,
.NET assemblies from the pythonnet wheel, and Authenticode signatures made with osslsigncode
(optional: a caller that needs a signature skips, saying why, when the tool is missing)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pip._vendor.distlib

LAUNCHERS = Path(pip._vendor.distlib.__file__).parent


def launcher(name: str = "t64.exe") -> bytes:
    """A real, unsigned Windows PE (distlib's script launchers)."""
    return (LAUNCHERS / name).read_bytes()


def dotnet_assembly() -> bytes:
    """Python.Runtime.dll from the pythonnet wheel: a real .NET assembly with resources and P/Invoke."""
    import pythonnet  # test extra: the assembly is all that is used

    return (Path(pythonnet.__file__).parent / "runtime" / "Python.Runtime.dll").read_bytes()


def elf(payload: bytes = b"\x90" * 64, sections: bool = True, marker: bytes = b"") -> bytes:
    """A minimal static x86-64 ELF executable: one LOAD segment holding `marker` and `payload`,
    with a section table (.text and .shstrtab) unless `sections` is False (as packers leave it)."""
    base = 0x400000
    code_off = 64 + 56
    body = marker + payload
    shstrtab = b"\x00.text\x00.shstrtab\x00"
    shoff = code_off + len(body) + len(shstrtab) if sections else 0
    entry = base + code_off + len(marker)
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, entry, 64, shoff, 0, 64, 56, 1, 64 if sections else 0,
                          3 if sections else 0, 2 if sections else 0)
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, code_off + len(body), code_off + len(body), 0x1000)
    data = header + segment + body
    if not sections:
        return data
    data += shstrtab
    null = bytes(64)
    text = struct.pack("<IIQQQQIIQQ", 1, 1, 6, base + code_off, code_off, len(body), 0, 0, 16, 0)
    names = struct.pack("<IIQQQQIIQQ", 7, 3, 0, 0, code_off + len(body), len(shstrtab), 0, 0, 1, 0)
    return data + null + text + names


def macho(payload: bytes = b"\x90" * 64) -> bytes:
    """A minimal x86-64 Mach-O executable: __PAGEZERO, __TEXT with a __text section, LC_MAIN."""
    text_cmd_size = 72 + 80
    commands = []
    commands.append(struct.pack("<II16sQQQQiiII", 0x19, 72, b"__PAGEZERO", 0, 0x100000000, 0, 0, 0, 0, 0, 0))
    header_size = 32
    sizeofcmds = 72 + text_cmd_size + 24
    code_off = header_size + sizeofcmds
    filesize = code_off + len(payload)
    segment = struct.pack("<II16sQQQQiiII", 0x19, text_cmd_size, b"__TEXT", 0x100000000, 0x1000, 0, filesize, 5, 5, 1, 0)
    section = struct.pack("<16s16sQQIIIIIIII", b"__text", b"__TEXT", 0x100000000 + code_off, len(payload), code_off,
                          4, 0, 0, 0x80000400, 0, 0, 0)
    commands.append(segment + section)
    commands.append(struct.pack("<IIQQ", 0x80000028, 24, code_off, 0))
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, 0x01000007, 3, 2, len(commands), sizeofcmds, 0x200085, 0)
    return header + b"".join(commands) + payload


def signing_available() -> bool:
    return shutil.which("osslsigncode") is not None and shutil.which("openssl") is not None


_CA_CONFIG = """[ca]
default_ca = local
[local]
database = index.txt
new_certs_dir = .
serial = serial.txt
default_md = sha256
policy = anything
unique_subject = no
[anything]
commonName = supplied
[ca_ext]
basicConstraints = critical, CA:true
keyUsage = keyCertSign, cRLSign
[leaf_ext]
basicConstraints = CA:false
keyUsage = digitalSignature
extendedKeyUsage = codeSigning
"""


def signed(pe: bytes, subject: str = "Example Software Ltd") -> bytes:
    """`pe` with an Authenticode signature by a leaf certificate that a throwaway CA issued.

    Both certificates start in 2024 (`openssl ca -startdate`): a certificate made in the same
    second as the signature can read as not yet valid to a verifier."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)

        def run(*args: str) -> None:
            subprocess.run(args, cwd=d, check=True, capture_output=True, timeout=60)
        (d / "ca.cnf").write_text(_CA_CONFIG)
        (d / "index.txt").write_text("")
        (d / "serial.txt").write_text("1000\n")
        dates = ("-startdate", "20240101000000Z", "-enddate", "20340101000000Z")
        for name, cn in (("ca", "Example Code Signing CA"), ("leaf", subject)):
            run("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        run("openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "ca.key", "-in", "ca.csr", "-out", "ca.pem",
            "-extensions", "ca_ext", "-notext", *dates)
        run("openssl", "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "leaf.csr", "-out", "leaf.pem",
            "-extensions", "leaf_ext", "-notext", *dates)
        (d / "chain.pem").write_bytes((d / "leaf.pem").read_bytes() + (d / "ca.pem").read_bytes())
        (d / "in.exe").write_bytes(pe)
        run("osslsigncode", "sign", "-certs", "chain.pem", "-key", "leaf.key", "-n", subject, "-in", "in.exe", "-out", "out.exe")
        return (d / "out.exe").read_bytes()


def tampered(pe: bytes) -> bytes:
    """A signed PE changed after signing (one byte of code flipped), as a patched installer is."""
    data = bytearray(pe)
    data[0x500] ^= 0xFF
    return bytes(data)
