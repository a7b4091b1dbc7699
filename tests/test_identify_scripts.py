"""Script types named as Assemblyline 4 names them, from content rules in schemas/filetypes.yml:
an HTA or WSF that libmagic calls HTML or XML, VBScript and VBA that it calls text."""

from __future__ import annotations

import pytest

from dispatcher.identify import identify


@pytest.mark.parametrize(("data", "expected"), [
    (b'<html><head><hta:application id="x"/></head><script language="VBScript">x</script></html>', "code/hta"),
    (b'<?xml version="1.0"?>\n<package><job id="a"><script language="JScript">var x=1;</script></job></package>', "code/wsf"),
    (b"<?php echo 1; ?>", "code/php"),
    (b'Attribute VB_Name = "Module1"\r\nSub AutoOpen()\r\nEnd Sub\r\n', "code/vba"),
    (b'Dim s\nSet s = CreateObject("WScript.Shell")\ns.Run "calc"\n', "code/vbs"),
    (b"<html><body>hello</body></html>", "code/html"),
    (b"Dim the lights. Set the table. Create objects.\n", "text/plain"),
])
def test_content_rules(data, expected):
    assert identify(data) == expected


def test_a_content_rule_never_matches_binary_content():
    assert identify(b"\x00\x01<hta:application" + bytes(100)) != "code/hta"
