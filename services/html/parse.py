"""One pass over an HTML page with the standard library's tolerant parser, keeping what an analyst
asks about a phishing or smuggling page: scripts and event handlers, forms, links with their
text, iframes, meta refresh, hidden elements, `download` anchors.

html.parser never raises on malformed markup (it is what browsers call "tag soup" tolerant
enough for triage), needs no dependency, and reads hostile pages in linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

MAX_ITEMS = 500  # per kind: a page made of a million links must not make a huge result
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|opacity\s*:\s*0(\.0*)?\s*(;|$)", re.I)
_VBS_TYPES = re.compile(r"vbscript|vbs", re.I)
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\" >]+)", re.I)


@dataclass
class Script:
    language: str  # "javascript" or "vbscript"
    source: str  # inline text, or an event handler's code
    origin: str  # "inline", "src", or the handler attribute (onload, onclick, ...)
    src: str = ""


@dataclass
class Form:
    action: str
    method: str
    has_password: bool = False


@dataclass
class Link:
    href: str
    text: str = ""
    download: str | None = None  # the download attribute's file name, "" when present without one


@dataclass
class Page:
    scripts: list[Script] = field(default_factory=list)
    forms: list[Form] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    iframes: list[tuple[str, bool]] = field(default_factory=list)  # (src, hidden)
    refreshes: list[str] = field(default_factory=list)
    hidden_elements: int = 0
    title: str = ""
    not_kept: int = 0  # scripts, links, forms, frames past MAX_ITEMS: counted, not kept
    embedded_data: list[tuple[str, str]] = field(default_factory=list)  # (tag, data: URL) of frames, objects, embeds


def _hidden(attrs: dict[str, str]) -> bool:
    if "hidden" in attrs or _HIDDEN_STYLE.search(attrs.get("style", "")):
        return True
    return attrs.get("width", "").strip() in ("0", "1") and attrs.get("height", "").strip() in ("0", "1")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._script: Script | None = None
        self._link: Link | None = None
        self._form: Form | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = {name: value or "" for name, value in attr_list}
        page = self.page
        for name, value in attrs.items():
            if name.startswith("on") and value.strip():
                language = "vbscript" if value.lower().startswith("vbscript:") else "javascript"
                self._keep(page.scripts, Script(language, value, name))
        if _hidden(attrs) and tag not in ("input", "meta", "script", "style", "link"):
            page.hidden_elements += 1
        if tag in ("iframe", "frame", "object", "embed"):
            source = (attrs.get("src") or attrs.get("data") or "").strip()
            if source.lower().startswith("data:"):
                self._keep(page.embedded_data, (tag, source))
        if tag == "script":
            language = "vbscript" if _VBS_TYPES.search(attrs.get("type", "") + attrs.get("language", "")) else "javascript"
            self._script = Script(language, "", "src" if attrs.get("src") else "inline", attrs.get("src", ""))
        elif tag == "a" and "href" in attrs:
            self._link = Link(attrs["href"].strip(), download=attrs.get("download"))
        elif tag == "form":
            self._form = Form(attrs.get("action", "").strip(), attrs.get("method", "get").lower())
            self._keep(page.forms, self._form)
        elif tag == "input" and attrs.get("type", "").lower() == "password" and self._form is not None:
            self._form.has_password = True
        elif tag in ("iframe", "frame"):
            self._keep(page.iframes, (attrs.get("src", "").strip(), _hidden(attrs)))
        elif tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            found = _REFRESH_URL.search(attrs.get("content", ""))
            if found:
                page.refreshes.append(found.group(1))
        elif tag == "title":
            self._in_title = True

    def _keep(self, items: list, item: object) -> None:
        if len(items) < MAX_ITEMS:
            items.append(item)
        else:
            self.page.not_kept += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self._keep(self.page.scripts, self._script)
            self._script = None
        elif tag == "a" and self._link is not None:
            self._keep(self.page.links, self._link)
            self._link = None
        elif tag == "form":
            self._form = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.source += data
        elif self._link is not None:
            self._link.text += data
        if self._in_title:
            self.page.title += data


def parse(text: str) -> Page:
    collector = _Collector()
    collector.feed(text)
    collector.close()
    if collector._script is not None:  # an unclosed <script> at the end
        collector._keep(collector.page.scripts, collector._script)
    return collector.page


_URLISH = re.compile(r"^\s*(?:https?://)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?:[/:?#]\S*)?\s*$", re.I)


def host(url: str) -> str:
    try:
        return (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return ""


def text_target_mismatch(link: Link) -> str | None:
    """The host a link's text shows when it differs from where the link goes (None if it does not
    show one, or shows the same host or a parent of it)."""
    shown = _URLISH.match(link.text)
    if not shown or not link.href.lower().startswith(("http://", "https://")):
        return None
    shown_host = shown.group(1).lower()
    target = host(link.href)
    if not target or target == shown_host or target.endswith("." + shown_host):
        return None
    return shown_host
