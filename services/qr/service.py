"""QR: the QR codes (and other barcodes) in an image, read with zxing-cpp.

QR-code phishing puts the link in a picture so that mail filters, which read text, never see
it; here the decoded text is a section, and its URLs become tags and URI samples (analysed in
turn by the uri service). Images are decoded by Pillow under a pixel limit (a decompression
bomb is refused, and said so).
"""

from __future__ import annotations

import io
import re
import warnings

import zxingcpp
from PIL import Image, UnidentifiedImageError

from services.sdk import BODY_FORMAT, MaxExtractedExceeded, Request, Result, ResultSection, ServiceBase

_URL = re.compile(r"(?i)\b(?:https?|ftp)://[^\s<>\"']+")


class QR(ServiceBase):
    def execute(self, request: Request) -> None:
        request.result = result = Result()
        max_pixels = int(self.config.get("max_pixels", 40_000_000))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(request.file_contents))
                if image.width * image.height > max_pixels:
                    raise Image.DecompressionBombError(f"{image.width}x{image.height} pixels")
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            result.add_section(ResultSection("Image not read", f"more than {max_pixels:,} pixels ({exc})"))
            return
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            result.add_section(ResultSection("Image not read", f"{type(exc).__name__}: {exc}"))
            return
        codes = zxingcpp.read_barcodes(image.convert("L"))
        if not codes:
            return
        rows = [{"format": str(code.format).split(".")[-1], "text": code.text[:2000]} for code in codes[:50]]
        section = ResultSection(f"Barcodes ({len(codes)})", rows, BODY_FORMAT.TABLE)
        urls = list(dict.fromkeys(url for code in codes for url in _URL.findall(code.text)))
        for text in {code.text for code in codes}:
            section.add_tag("file.string.decoded", text[:4096])
        result.add_section(section)
        if urls:
            links = ResultSection("URL in a QR code", heuristic=1)
            links.add_lines(urls[:50])
            for url in urls[:50]:
                links.add_tag("network.static.uri", url)
                try:
                    request.add_related("uri", url, description="read from a QR code in the image")
                except MaxExtractedExceeded:
                    links.add_line(f"(the rest not related as URI samples: the file reached its limit of {request.max_extracted})")
                    break
            result.add_section(links)
