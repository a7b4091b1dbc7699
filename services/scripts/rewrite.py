"""In-place simplifications: what a script computes from literals, written as the literal.

Obfuscators build every telling word out of pieces (`'Down'+'loadString'`, `"{1}{0}" -f 'd','Loa'`,
`Chr(87) & Chr(83)`, `p^o^w^e^r^s^h^e^l^l`, `` i`e`x ``, `\x68\x74\x74\x70`). Each rewrite here
evaluates one such construct when all its inputs are literals and leaves everything else alone,
so running them to a fixed point yields the text a reader needs, and the heuristics see the real
words. JavaScript goes through a real parser (see `jsfold`); PowerShell, VBScript and batch have
no maintained Python parser, so their rewrites are narrow patterns over string literals.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from urllib.parse import unquote

# A quoted literal without quotes of its kind inside (the cases obfuscators emit).
_SQ = r"'(?:[^'\n]|'')*'"
_DQ = r'"[^"\n]*"'
_LIT = rf"(?:{_SQ}|{_DQ})"


def _value(literal: str) -> str:
    body = literal[1:-1]
    return body.replace("''", "'") if literal[0] == "'" else body


def _quote(value: str) -> str:
    if '"' not in value and "\n" not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "''").replace("\n", " ") + "'"


_CONCAT_RUN = re.compile(rf"{_LIT}(?:\s*[+&]\s*{_LIT})+")
_LITERAL = re.compile(_LIT)


def _concat(text: str) -> str:
    """`'a' + 'b' + 'c'`, `"a" & "b"` -> one literal (PowerShell, VBScript, JScript alike); a
    whole run in one pass, so a script of a million one-letter pieces costs one pass, not twenty."""
    return _CONCAT_RUN.sub(lambda m: _quote("".join(_value(lit) for lit in _LITERAL.findall(m.group(0)))), text)


_FORMAT = re.compile(rf"\(?\s*({_LIT})\s*-f\s*((?:{_LIT}\s*,\s*)*{_LIT})\s*\)?", re.I)


def _format(text: str) -> str:
    """PowerShell's `"{1}{0}" -f 'ing','Str'`."""
    def apply(m: re.Match[str]) -> str:
        template = _value(m.group(1))
        args = [_value(a) for a in re.findall(_LIT, m.group(2))]
        try:
            return _quote(re.sub(r"\{(\d+)\}", lambda k: args[int(k.group(1))], template))
        except IndexError:
            return m.group(0)
    return _FORMAT.sub(apply, text)


_REPLACE_METHOD = re.compile(rf"({_LIT})\)?\.replace\(\s*({_LIT})\s*,\s*({_LIT})\s*\)", re.I)
_REPLACE_OP = re.compile(rf"({_LIT})\s*-c?replace\s*({_LIT})\s*,\s*({_LIT})", re.I)
_REPLACE_VB = re.compile(rf"\bReplace\(\s*({_LIT})\s*,\s*({_LIT})\s*,\s*({_LIT})\s*\)", re.I)


def _replace(text: str) -> str:
    """`'aXb'.Replace('X','')`, `'aXb' -replace 'X',''`, `Replace("aXb", "X", "")`."""
    def literal(m: re.Match[str]) -> str:
        return _quote(_value(m.group(1)).replace(_value(m.group(2)), _value(m.group(3))))

    def regex(m: re.Match[str]) -> str:
        try:
            return _quote(re.sub(_value(m.group(2)), _value(m.group(3)).replace("$", "\\"), _value(m.group(1)), flags=re.I))
        except (re.error, IndexError):
            return m.group(0)
    text = _REPLACE_METHOD.sub(literal, text)
    text = _REPLACE_VB.sub(literal, text)
    return _REPLACE_OP.sub(regex, text)


_STRREVERSE = re.compile(rf"\bStrReverse\(\s*({_LIT})\s*\)", re.I)
_PS_REVERSE = re.compile(rf"-join\s*\(?\s*\(?\s*({_LIT})\s*\)?\s*\[\s*-1\s*\.\.\s*-?\(?[\w.$ +-]*\)?\s*\]\s*\)?", re.I)
_SPLIT_REVERSE = re.compile(rf"({_LIT})\.split\(\s*(?:''|\"\")\s*\)\.reverse\(\)\.join\(\s*(?:''|\"\")\s*\)", re.I)


def _reverse(text: str) -> str:
    """`StrReverse("lehs")`, `-join ('lehs'[-1..-4])`, `"lehs".split("").reverse().join("")`."""
    flip = lambda m: _quote(_value(m.group(1))[::-1])  # noqa: E731 - one-line callback
    return _SPLIT_REVERSE.sub(flip, _PS_REVERSE.sub(flip, _STRREVERSE.sub(flip, text)))


_NUM = r"(?:0x[0-9a-f]+|\d+)"
_PS_CHARS = re.compile(rf"(?:\[char\]\s*\(?\s*{_NUM}\s*\)?\s*\+?\s*){{2,}}", re.I)
_VB_CHARS = re.compile(rf"(?:ChrW?\$?\(\s*{_NUM}\s*\)\s*&?\s*){{2,}}", re.I)
_FROM_CHARCODE = re.compile(rf"String\.fromCharCode\(\s*((?:{_NUM}\s*,\s*)*{_NUM})\s*\)", re.I)
_CHAR_ARRAY = re.compile(rf"\[char\[\]\]\s*\(\s*((?:{_NUM}\s*,\s*)+{_NUM})\s*\)(?:\s*-join\s*(?:''|\"\"))?", re.I)


def _chars(numbers: list[str]) -> str | None:
    try:
        values = [int(n, 0) if n.lower().startswith("0x") else int(n) for n in numbers]
        return "".join(map(chr, values))
    except (ValueError, OverflowError):
        return None


def _char_codes(text: str) -> str:
    """`[char]72+[char]105`, `Chr(72) & Chr(105)`, `String.fromCharCode(72,105)`, `[char[]](72,105) -join ''`."""
    def joined(m: re.Match[str]) -> str:
        value = _chars(re.findall(_NUM, re.sub(r"ChrW?|char", "", m.group(0), flags=re.I), re.I))
        return m.group(0) if value is None else _quote(value) + (" & " if m.group(0).rstrip().endswith("&") else "")

    def listed(m: re.Match[str]) -> str:
        value = _chars(re.split(r"\s*,\s*", m.group(1).strip()))
        return m.group(0) if value is None else _quote(value)
    text = _PS_CHARS.sub(joined, text)
    text = _VB_CHARS.sub(joined, text)
    text = _FROM_CHARCODE.sub(listed, text)
    return _CHAR_ARRAY.sub(listed, text)


_ESCAPE_RUN = re.compile(r"(?:\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|%u[0-9a-f]{4}){3,}", re.I)
_UNESCAPE = re.compile(rf"\bunescape\(\s*({_LIT})\s*\)", re.I)


def _escapes(text: str) -> str:
    """Runs of `\\x68`, `\\u0068`, `%u0068` escapes, and `unescape("%68%74")` on a literal."""
    def run(m: re.Match[str]) -> str:
        return re.sub(r"(?:\\x|\\u|%u)([0-9a-f]{2,4})", lambda e: chr(int(e.group(1), 16)), m.group(0), flags=re.I)
    text = _ESCAPE_RUN.sub(run, text)
    return _UNESCAPE.sub(lambda m: _quote(unquote(_value(m.group(1)))), text)


_BACKTICK = re.compile(r"`(?=[a-z])(?![0abfnrtv](?![a-z]))", re.I)
_CARET = re.compile(r"(?<=[\w%])\^(?=[\w%])")


def _tick_and_caret(text: str) -> str:
    """PowerShell's `` i`e`x `` (a backtick before a letter that is no escape) and cmd's `p^o^w^e^r`."""
    return _CARET.sub("", _BACKTICK.sub("", text))


_BATCH_SET = re.compile(r"^\s*set\s+\"?(\w{1,40})=([^\"\r\n]*)\"?\s*$", re.I | re.M)


def _batch_variables(text: str) -> str:
    """`set a=pow` / `set b=ershell` / `%a%%b%` -> `powershell`, for variables set exactly once."""
    assignments: dict[str, list[str]] = {}
    for name, value in _BATCH_SET.findall(text):
        assignments.setdefault(name.lower(), []).append(value)
    single = {k: v[0] for k, v in assignments.items() if len(v) == 1}
    if not single:
        return text

    def expand(run: re.Match[str]) -> str:
        # Only where variables are glued to each other or to letters (`%a%%b%`, `po%x%ll`): a
        # variable used whole (`/p:Configuration=%CONFIG%`) hides nothing.
        if run.group(0).count("%") < 4 and re.fullmatch(r"%\w+%", run.group(0)):
            return run.group(0)
        return re.sub(r"%(\w{1,40})%", lambda m: single.get(m.group(1).lower(), m.group(0)), run.group(0))
    return _GLUED_VARIABLES.sub(expand, text)


_GLUED_VARIABLES = re.compile(r"\w*(?:%\w{1,40}%\w*)+")


Rewrite = Callable[[str], str]
REWRITES: dict[str, Rewrite] = {
    "backticks and carets": _tick_and_caret,
    "escape sequences": _escapes,
    "character codes": _char_codes,
    "string reversal": _reverse,
    "string replacement": _replace,
    "format strings": _format,
    "string concatenation": _concat,
    "batch variables": _batch_variables,
}


def simplify(text: str, rounds: int = 12, deadline: float = float("inf")) -> tuple[str, list[str]]:
    """Apply every rewrite until nothing changes (at most `rounds` passes, and none started after
    `deadline`, a `time.monotonic()` value); the result and the names of the rewrites that
    changed something, in the order they first did."""
    used: list[str] = []
    for _ in range(rounds):
        before = text
        for name, rewrite in REWRITES.items():
            if time.monotonic() > deadline:
                return text, used
            after = rewrite(text)
            if after != text:
                if name not in used:
                    used.append(name)
                text = after
        if text == before:
            break
    return text, used
