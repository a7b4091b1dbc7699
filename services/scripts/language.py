"""Which script language a text is written in.

The dispatcher types most scripts by content, but a decoded layer, a macro's source or a script
with no telling first line arrives as `text/plain`; the peeling and the heuristics need to know
the language (a caret means nothing in PowerShell and everything in batch). Each language has a
few markers that are rare elsewhere; the language with most distinct markers wins.
"""

from __future__ import annotations

import re

POWERSHELL, VBS, JAVASCRIPT, BATCH, HTA, WSF, VBA, PHP, ASP, HTML = (
    "powershell", "vbs", "javascript", "batch", "hta", "wsf", "vba", "php", "asp", "html")

# The dispatcher's type, when it is precise, settles it.
_BY_TYPE = {
    "code/powershell": POWERSHELL, "code/vbs": VBS, "code/javascript": JAVASCRIPT, "code/jscript": JAVASCRIPT,
    "code/batch": BATCH, "code/hta": HTA, "code/wsf": WSF, "code/vba": VBA, "code/php": PHP, "code/html": HTML,
}

_MARKERS: dict[str, list[re.Pattern[str]]] = {
    lang: [re.compile(p, re.I | re.M) for p in patterns]
    for lang, patterns in {
        HTA: [r"<hta:application", r"<script[^>]+language\s*=\s*[\"']?vbscript"],
        WSF: [r"<job\b", r"<package\b", r"<script[^>]+language\s*=\s*[\"']?(jscript|vbscript)"],
        PHP: [r"<\?php", r"\$_(GET|POST|REQUEST|COOKIE|SERVER)\b"],
        ASP: [r"<%@?\s*(Page|Language|Import)\b", r"<%[\s\S]{0,2000}\bRequest(\.Form|\.QueryString|\.Item)?\s*[(\[]",
              r"<%\s*(eval|Execute)\b"],
        VBA: [r"^\s*(Private |Public )?Sub (Auto_?Open|Document_Open|Workbook_Open|AutoExec)\b", r"^\s*Attribute VB_Name",
              r"#If VBA7", r"\bDeclare (PtrSafe )?Function\b"],
        POWERSHELL: [r"\$\w+\s*=", r"\b(Invoke-\w+|New-Object|Get-\w+|Set-\w+|Start-Process|Write-Host)\b",
                     r"\[(System\.)?\w+(\.\w+)*\]::", r"\bparam\s*\(", r"-(join|split|replace|bxor|f)\b", r"\|\s*%\{",
                     r"^\s*powershell(\.exe)?\b", r"\$(null|true|false)\b", r"\$env:\w+", r"\[Ref\]", r"-(eq|ne|lt|gt|like|match)\s",
                     r"\b(iex|Invoke-Expression)\b"],
        BATCH: [r"^\s*@?echo\s+off\b", r"^\s*(set|setlocal|goto|call|rem)\b", r"%~?\w+%|%%\w", r"^\s*:\w+\s*$",
                r"\bcmd(\.exe)?\s+/[ck]\b"],
        VBS: [r"\bDim\s+\w+", r"\bCreateObject\s*\(", r"\bWScript\.\w+", r"^\s*(End (Sub|Function|If)|Next|Wend)\b",
              r"\bSet\s+\w+\s*=\s*", r"\bChrW?\(\d+\)\s*&"],
        JAVASCRIPT: [r"\bvar\s+\w+\s*=", r"\bfunction\s*\w*\s*\(", r"\bnew\s+ActiveXObject\b", r"\b(let|const)\s+\w+\s*=",
                     r"String\.fromCharCode", r"\beval\s*\(", r";\s*$", r"=>"],
    }.items()
}


def sniff(text: str, file_type: str) -> str | None:
    """The language of `text`, or None when nothing marks it as a script."""
    if file_type in _BY_TYPE:
        return _BY_TYPE[file_type]
    head = text[:65536]
    scores = {lang: sum(1 for p in patterns if p.search(head)) for lang, patterns in _MARKERS.items()}
    # Wrappers first: an HTA or WSF carries VBScript/JScript inside, and is judged as the wrapper.
    for wrapper in (HTA, WSF, PHP, ASP):
        if scores[wrapper] and (wrapper != WSF or scores[wrapper] >= 2):
            return wrapper
    if scores[VBA]:
        return VBA
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] >= 2 else None

