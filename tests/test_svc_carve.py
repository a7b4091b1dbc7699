"""The carve service: payloads appended to images, a zip in a PE overlay, base64/hex executables
in text, and a PyInstaller bundle, all built here (the PE is one of pip's own launchers)."""

from __future__ import annotations

import base64
import importlib.util
import io
import marshal
import sys
import zipfile
from pathlib import Path

import pip._vendor.distlib
import pytest

from formats import append_to_image, make_pyinstaller
from dispatcher.identify import identify
from services.sdk.harness import run_service_once

LAUNCHER = (Path(pip._vendor.distlib.__file__).parent / "t64.exe").read_bytes()


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def carve(data: bytes, name: str = "sample"):
    run = run_service_once("carve", data, file_type=identify(data), name=name)
    assert run.result.error is None
    assert "Result warnings" not in {s.title for s in run.result.sections}
    return run


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "GIF", "BMP"])
def test_pe_appended_to_an_image_is_carved(kind):
    data = append_to_image(kind, LAUNCHER)
    run = carve(data, f"cat.{kind.lower()}")
    assert [e.data for e in run.extracted] == [LAUNCHER]
    assert run.heuristics == {1}


def test_rar_appended_to_a_jpeg_is_carved():
    rar = b"Rar!\x1a\x07\x01\x00" + bytes(100)
    run = carve(append_to_image("JPEG", rar), "cat.jpg")
    assert run.extracted[0].data == rar and run.extracted[0].name.endswith(".rar")


def test_a_plain_image_gives_nothing():
    run = carve(append_to_image("PNG", b""), "plain.png")
    assert run.extracted == [] and run.result.sections == []


def test_zip_in_a_pe_overlay_is_carved():
    archive = zip_of({"payload.dll": b"MZ not really"})
    run = carve(LAUNCHER + archive, "dropper.exe")
    assert [e.data for e in run.extracted] == [archive]
    assert 2 in run.heuristics


def test_base64_and_hex_executables_in_text_are_decoded():
    b64 = base64.b64encode(LAUNCHER).decode()
    wrapped = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    text = f"$payload = @'\n{wrapped}\n'@\n# and the same as hex:\n$h = '{LAUNCHER[:4096].hex()}'\n".encode()
    run = carve(text, "loader.ps1")
    got = {e.name.split("-")[0]: e.data for e in run.extracted}
    assert got["base64"] == LAUNCHER and got["hex"] == LAUNCHER[:4096]
    assert 4 in run.heuristics


def test_text_without_payloads_gives_nothing():
    run = carve(b"just some words " * 1000, "notes.txt")
    assert run.extracted == []


def test_pyinstaller_entry_scripts_come_out():
    code = marshal.dumps(compile("print('stage two')", "main", "exec"))
    data = make_pyinstaller(LAUNCHER, {"main": code, "pyi_rth_inspect": b"x"},
                            pyver=sys.version_info.major * 100 + sys.version_info.minor)
    run = carve(data, "frozen.exe")
    got = {e.name: e.data for e in run.extracted}
    assert got["main.pyc"] == importlib.util.MAGIC_NUMBER + bytes(12) + code
    assert identify(got["main.pyc"]) == "resource/pyc"
    assert "PYZ-00.pyz" in got
    assert "file.compiler" in {t.name for s in run.result.sections for t in s.tags}
    assert 3 in run.heuristics
