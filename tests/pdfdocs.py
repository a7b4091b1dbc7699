"""PDFs built in memory for the pdf service tests: with pypdf's writer, or written by hand
(`raw_pdf`) when a test needs bytes no writer produces, such as names spelled with #xx escapes."""

from __future__ import annotations

import io

from pypdf import PdfWriter
from pypdf.actions import JavaScript
from pypdf.annotations import Link
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject


def written(writer: PdfWriter) -> bytes:
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def one_page() -> PdfWriter:
    """A writer holding one blank Letter page."""
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    return writer


def with_javascript(document_js: str, open_js: str, writer: PdfWriter | None = None) -> PdfWriter:
    """Document-level JavaScript (the /Names /JavaScript tree, pypdf's add_open_action) and an
    /OpenAction running a JavaScript action whose /JS is a Flate-compressed stream."""
    writer = writer or one_page()
    writer.add_open_action(JavaScript(document_js))
    code = DecodedStreamObject()
    code.set_data(open_js.encode())
    action = DictionaryObject({
        NameObject("/Type"): NameObject("/Action"),
        NameObject("/S"): NameObject("/JavaScript"),
        # pypdf has no public call to add an indirect object, and a stream must be one.
        NameObject("/JS"): writer._add_object(code.flate_encode()),
    })
    writer.root_object[NameObject("/OpenAction")] = writer._add_object(action)
    return writer


def with_attachments(files: dict[str, bytes]) -> bytes:
    """Files in the /EmbeddedFiles name tree (pypdf's add_attachment)."""
    writer = one_page()
    for name, data in files.items():
        writer.add_attachment(name, data)
    return written(writer)


def with_link(url: str) -> bytes:
    writer = one_page()
    writer.add_annotation(0, Link(rect=(72, 700, 300, 730), url=url))
    return written(writer)


def encrypted(writer: PdfWriter, owner_password: str, user_password: str = "") -> bytes:
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    return written(writer)


def raw_pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF of `objects` (object n+1 is objects[n], the dictionary text only) with a correct xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def obfuscated_javascript(code: bytes) -> bytes:
    """An /OpenAction JavaScript action with its names hidden: /S /J#61vaScript and /J#53 for /JS."""
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        b"<< /Type /Action /S /J#61vaScript /J#53 (" + code + b") >>",
    ])


def launch_action(program: bytes, parameters: bytes) -> bytes:
    """A page whose open action (/AA /O) launches a program, the Windows form of /Launch."""
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /AA << /O 4 0 R >> >>",
        b"<< /Type /Action /S /Launch /Win << /F (" + program + b") /P (" + parameters + b") >> >>",
    ])


def attachment_annotation(name: bytes, data: bytes) -> bytes:
    """A file attached through a page's /FileAttachment annotation (not the name tree)."""
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Annots [4 0 R] >>",
        b"<< /Type /Annot /Subtype /FileAttachment /Rect [72 700 90 720] /FS << /Type /Filespec /F ("
        + name + b") /EF << /F 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data),
    ])
