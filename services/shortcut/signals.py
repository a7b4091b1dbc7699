"""What makes a shortcut's command suspicious: interpreters and LOLBins, long or obfuscated
arguments, remote targets, a document's icon on a program."""

from __future__ import annotations

import re

_OBFUSCATION = [
    (re.compile(r"\s-(?:e|ec|en|enc|enco|encod|encode|encodedcommand)\s+[A-Za-z0-9+/=]{20,}", re.I), "encoded PowerShell command"),
    (re.compile(r"(?:\^.){4,}"), "caret escapes"),
    (re.compile(r"%[A-Za-z_]+:~-?\d+,?-?\d*%"), "environment-variable substrings"),
    (re.compile(r"\s{40,}"), "long run of spaces (hides the arguments in the Properties dialog)"),
    (re.compile(r"(?:frombase64string|-join|\[char\]|iex\b|invoke-expression|downloadstring|\bbitsadmin\b|certutil\s+-(?:decode|urlcache))", re.I),
     "download or decode-and-run idioms"),
]
_DOCUMENT_ICON = re.compile(r"\.(pdf|docx?|xlsx?|pptx?|txt|jpe?g|png)(?:,|$)|shell32\.dll|imageres\.dll|msedge|chrome|acrobat", re.I)


def program_name(path: str) -> str:
    return re.split(r"[\\/]", path.strip().strip('"'))[-1].lower()


def lolbin(target: str, arguments: str, lolbins: set[str]) -> str | None:
    """The interpreter or LOLBin the shortcut runs: its target, or the first word of its arguments
    when the target is `explorer.exe`/`cmd.exe /c` style wrapping."""
    name = program_name(target)
    if name in lolbins:
        return name
    first = program_name(arguments.split()[0]) if arguments.split() else ""
    return first if first in lolbins else None


def obfuscation(arguments: str, long_after: int) -> list[str]:
    found = [what for pattern, what in _OBFUSCATION if pattern.search(arguments)]
    if len(arguments) > long_after:
        found.append(f"{len(arguments)} characters of arguments")
    return found


def remote(path: str) -> bool:
    return path.startswith("\\\\") or "://" in path


def decoy_icon(icon: str, target: str, lolbins: set[str]) -> bool:
    """A document's or browser's icon on a shortcut that runs an interpreter."""
    return bool(icon and program_name(target) in lolbins and _DOCUMENT_ICON.search(icon))
