"""Text launchers that fetch or run something when opened: Internet shortcuts (.url), Excel web
queries (.iqy), Windows settings shortcuts (.settingcontent-ms, whose DeepLink is a command
line) and Java Web Start files (.jnlp). Each is read with a few patterns, not a full parser:
they are small, and hostile XML is safer unparsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin


@dataclass
class Launcher:
    kind: str
    targets: list[str] = field(default_factory=list)  # URLs, paths or command lines it opens
    icon: str = ""


_URL_LINE = re.compile(r"^\s*(URL|BASEURL|IconFile|WorkingDirectory)\s*=\s*(.+?)\s*$", re.I | re.M)
_DEEPLINK = re.compile(r"<DeepLink>\s*(.*?)\s*</DeepLink>", re.I | re.S)
_JNLP_CODEBASE = re.compile(r"<jnlp\b[^>]*\bcodebase\s*=\s*[\"']([^\"']+)", re.I)
_JNLP_HREF = re.compile(r"<(?:jar|nativelib|extension)\b[^>]*\bhref\s*=\s*[\"']([^\"']+)", re.I)
_JNLP_MAIN = re.compile(r"main-class\s*=\s*[\"']([^\"']+)", re.I)


def read(file_type: str, text: str) -> Launcher:
    kind = file_type.rsplit("/", 1)[-1]
    if kind == "web":
        launcher = Launcher("Internet shortcut")
        for key, value in _URL_LINE.findall(text):
            if key.lower() in ("url", "baseurl") and value not in launcher.targets:
                launcher.targets.append(value)
            elif key.lower() == "iconfile":
                launcher.icon = value
        return launcher
    if kind == "iqy":
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return Launcher("Excel web query", [line for line in lines[2:] if "://" in line or line.startswith("\\\\")][:10])
    if kind == "settingcontent":
        return Launcher("Settings shortcut", [" ".join(m.split()) for m in _DEEPLINK.findall(text)][:10])
    if kind == "jnlp":
        codebase = (_JNLP_CODEBASE.search(text) or [None, ""])[1]
        hrefs = [urljoin(codebase.rstrip("/") + "/", href) if codebase else href for href in _JNLP_HREF.findall(text)]
        main = _JNLP_MAIN.search(text)
        targets = ([codebase] if codebase else []) + hrefs[:20]
        return Launcher("Java Web Start", targets + ([f"main-class {main.group(1)}"] if main else []))
    return Launcher(kind)
