"""Types for the formats of issue 14 (head rules, libmagic rules, magika's second opinion), and
magika kept off the common path."""

from __future__ import annotations

import random
import re

import pytest

from formats import specimens
from dispatcher import identify as identify_module
from dispatcher.identify import identify
from schemas.taxonomy import taxonomy

SPECIMENS = specimens()


@pytest.mark.parametrize("specimen", SPECIMENS, ids=[s.format for s in SPECIMENS])
def test_each_format_gets_its_type(specimen):
    assert identify(specimen.data) == specimen.expected


def test_every_magika_target_is_a_known_type():
    assert set(taxonomy().magika.values()) <= set(taxonomy().types)


def test_magika_is_asked_only_when_libmagic_has_no_answer(monkeypatch):
    asked: list[int] = []
    real = identify_module.second_opinion

    def counting(data: bytes) -> str:
        asked.append(len(data))
        return real(data)

    monkeypatch.setattr(identify_module, "second_opinion", counting)
    common = [s for s in SPECIMENS if s.expected != "archive/dmg"]
    assert [identify(s.data) for s in common] == [s.expected for s in common]
    assert asked == []
    dmg = next(s for s in SPECIMENS if s.expected == "archive/dmg")
    assert identify(dmg.data) == "archive/dmg" and len(asked) == 1


def test_without_magika_an_unknown_file_stays_unknown(monkeypatch):
    monkeypatch.setattr(identify_module, "_magika", lambda: None)
    dmg = next(s for s in SPECIMENS if s.expected == "archive/dmg")
    assert identify(dmg.data) == "unknown"


@pytest.mark.parametrize("data", [bytes(5000), b"\xff" * 300], ids=["zeros", "ones"])
def test_uniform_bytes_are_not_guessed(data):
    assert identify(data) == "unknown"


@pytest.mark.parametrize("first", [b"MIME-Version: 1.0\n", b"X-Mailer: Outlook\n", b"Subject: invoice\n",
                                   b"DKIM-Signature: v=1; a=rsa-sha256;\n\td=evil.example\n", b"Received: from x by y\n"])
def test_an_email_is_an_email_whatever_its_first_header(first):
    mail = first + b"From: a@evil.example\nTo: v@victim.example\nSubject: x\nContent-Type: text/plain\n\nbody\n"
    assert identify(mail) == "text/email"


@pytest.mark.parametrize("text", [b"Name: x\nValue: y\n", b"note: From: a\nSubject: b\n"])
def test_header_like_text_is_not_an_email(text):
    assert identify(text) == "text/plain"


@pytest.mark.parametrize("page", [b"<body onload='go()'><form action='https://e.example/p'><input type=password></form>",
                                  b"<meta http-equiv='refresh' content='0;url=https://e.example/'>",
                                  b"\n<iframe src='https://e.example/' width=0 height=0></iframe>"])
def test_an_html_fragment_is_html(page):
    assert identify(page) == "code/html"


@pytest.mark.parametrize("text", [
    "<?php echo 1;", "x\n  <?php x", "a <?php", "Attribute VB_Name = \"m\"", "foo\r\nSub AutoOpen()\r\n",
    "Dim x\nSet y = CreateObject(\"WScript.Shell\")", "xx Dim a CreateObject", "\n\n\nPrivate Sub Document_Open()",
    "dim shell\nshell = 1\n" + "pad\n" * 500 + "WScript.Echo 1", "<hta:application id=x>", "plain words only\n",
])
def test_content_rules_tried_at_line_starts_answer_as_a_search_would(text):
    # A rule whose every alternative starts with `^` is tried at line starts only (a search
    # tries every character): the answer must be the same.
    tests = identify_module._content_patterns()
    for rule in taxonomy().rules:
        if rule.content:
            assert tests[rule.content](text) == (re.search(rule.content, text, re.I | re.M) is not None), rule.content
    assert any(identify_module._line_anchored(r.content) for r in taxonomy().rules if r.content)


def test_noise_is_not_sent_to_magika(monkeypatch):
    """Random bytes (small, or large with random ends) stay `unknown` without asking the model,
    which would cost every such file 10-17 ms; a DMG, whose trailer is structured, is still asked."""
    asked: list[int] = []
    monkeypatch.setattr(identify_module, "magika_type", lambda data: asked.append(len(data)) or "unknown")
    rng = random.Random(5)
    for noise in (rng.randbytes(1024), rng.randbytes(300_000)):
        assert identify(noise) == "unknown"
    assert asked == []
    dmg = next(s for s in SPECIMENS if s.expected == "archive/dmg")
    identify(dmg.data)
    assert asked == [len(dmg.data)]
