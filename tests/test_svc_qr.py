"""The qr service on images made here: a QR code's URL in a PNG and a JPEG, none in a plain
image, and a decompression bomb refused."""

from __future__ import annotations

import io

import numpy
import pytest
import zxingcpp
from PIL import Image

from dispatcher.identify import identify
from services.sdk.harness import run_service_once

URL = "https://login.evil.example/m365?u=victim@example.org"


def qr_image(text: str, fmt: str) -> bytes:
    code = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode)
    pixels = numpy.asarray(code.to_image(scale=6, add_quiet_zones=True))
    canvas = Image.new("L", (pixels.shape[1] + 200, pixels.shape[0] + 200), 255)
    canvas.paste(Image.fromarray(pixels), (100, 100))  # the code inside a larger picture
    out = io.BytesIO()
    canvas.convert("RGB").save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_qr_url_becomes_a_tag_and_a_uri_sample(fmt):
    data = qr_image(URL, fmt)
    run = run_service_once("qr", data, file_type=identify(data), name=f"scan.{fmt.lower()}")
    assert run.result.error is None
    assert URL in run.tags("network.static.uri")
    assert [r.ref.name for r in run.related] == [URL]
    assert run.heuristics == {1}


def test_image_without_a_code_gives_nothing():
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(out, format="PNG")
    run = run_service_once("qr", out.getvalue(), file_type="image/png", name="green.png")
    assert run.result.error is None and run.result.sections == []


def test_decompression_bomb_is_refused():
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, format="PNG")  # 400 M pixels in ~50 KiB
    run = run_service_once("qr", out.getvalue(), file_type="image/png", name="bomb.png")
    assert run.result.error is None
    assert "pixels" in run.section("Image not read").body
