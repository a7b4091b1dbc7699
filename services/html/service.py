"""HTML: what a phishing or smuggling page does, and its parts as children.

Scripts (inline, and event handlers gathered in one file) go out as children typed by the
dispatcher, so the scripts service deobfuscates them; smuggled payloads are decoded into
children; links, frames, form targets and redirects become tags, with heuristics for the
usual phishing tricks.
"""

from __future__ import annotations

import re

from schemas.tags import tag_problem
from services.html.parse import MAX_ITEMS, Page, host, parse, text_target_mismatch
from services.html.smuggling import payloads
from services.sdk import MaxExtractedExceeded, Request, Result, ResultSection, ServiceBase

_SCRIPT_REDIRECT = re.compile(
    r"""(?:location(?:\.href)?\s*=\s*|location\.(?:replace|assign)\s*\(\s*|window\.open\s*\(\s*)["'`]([^"'`\s]{4,2048})["'`]""")
_EXTENSION = {"javascript": "js", "vbscript": "vbs"}
MAX_LINES = 50


def _web(url: str) -> bool:
    return url.lower().startswith(("http://", "https://", "ftp://"))


def _tag(section: ResultSection, name: str, value: str) -> None:
    """Tag what the taxonomy keeps: values from hostile headers and markup (an address without a
    domain, a host with an underscore) are shown in the section's text, not turned into warnings."""
    if tag_problem(name, value) is None:
        section.add_tag(name, value)


class Children:
    """One page's extracted files, counting those refused past the per-file limit (said, not dropped silently)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.refused = 0

    def add(self, data: bytes, name: str, description: str) -> None:
        try:
            self.request.add_extracted(data, name, description)
        except MaxExtractedExceeded:
            self.refused += 1


class Html(ServiceBase):
    def execute(self, request: Request) -> None:
        request.result = result = Result()
        text = request.file_contents.decode("utf-8", "replace")
        page = parse(text)
        children = Children(request)
        self._scripts(children, result, page)
        self._smuggling(children, result, page)
        self._forms(result, page)
        self._redirects(result, page)
        self._frames(result, page)
        self._links(result, page)
        if page.not_kept:
            result.add_section(ResultSection("Page cut", f"{page.not_kept:,} more scripts, links, forms or frames than "
                                             f"the {MAX_ITEMS} kept of each kind were counted, not analysed"))
        if children.refused:
            result.add_section(ResultSection("Too many children", f"{children.refused} scripts or payloads were not "
                                             f"extracted: the file reached its limit of {request.max_extracted}"))
        if page.hidden_elements:
            result.add_section(ResultSection("Hidden elements", f"{page.hidden_elements} elements are hidden "
                                             "(display:none, visibility:hidden, zero size or the hidden attribute)",
                                             heuristic=7))

    def _scripts(self, children: Children, result: Result, page: Page) -> None:
        inline = [s for s in page.scripts if s.origin == "inline" and s.source.strip()]
        handlers = [s for s in page.scripts if s.origin not in ("inline", "src")]
        sources = [s.src for s in page.scripts if s.origin == "src"]
        if not (inline or handlers or sources):
            return
        section = ResultSection("Scripts", heuristic=1)
        section.add_line(f"{len(inline)} inline script(s), {len(handlers)} event handler(s), {len(sources)} external script(s)")
        for index, script in enumerate(inline[: self.config.get("max_scripts", 50)], start=1):
            name = f"script-{index}.{_EXTENSION[script.language]}"
            children.add(script.source.strip().encode(), name, f"inline {script.language} #{index}")
        if handlers:
            body = "\n".join(f"// {s.origin}\n{s.source.strip().removeprefix('javascript:')}" for s in handlers)
            children.add(body.encode(), "event-handlers.js", "the page's event handler attributes")
            section.add_lines([f"{s.origin}: {s.source.strip()[:200]}" for s in handlers], limit=MAX_LINES)
        for src in sources:
            section.add_line(f"external script: {src[:300]}")
            if _web(src):
                _tag(section, "network.static.uri", src)
        result.add_section(section)

    def _smuggling(self, children: Children, result: Result, page: Page) -> None:
        found = payloads(page, int(self.config.get("max_payloads", 10)), int(self.config.get("max_payload_bytes", 100 * 2**20)))
        if not found:
            return
        section = ResultSection("HTML smuggling", heuristic=3)
        for payload in found:
            children.add(payload.data, payload.name, f"smuggled payload ({payload.how})")
            section.add_line(f"{payload.name}: {len(payload.data):,} bytes decoded ({payload.how})")
            section.add_tag("file.name.extracted", payload.name)
        result.add_section(section)

    def _forms(self, result: Result, page: Page) -> None:
        elsewhere = [f for f in page.forms if f.has_password and (_web(f.action) or f.action.lower().startswith("mailto:"))]
        if elsewhere:
            section = ResultSection("Password form posting elsewhere", heuristic=2)
            for form in elsewhere:
                section.add_line(f"{form.method.upper()} {form.action}")
                if _web(form.action):
                    _tag(section, "network.static.uri", form.action)
            result.add_section(section)

    def _redirects(self, result: Result, page: Page) -> None:
        targets = [("meta refresh", url) for url in page.refreshes]
        for script in page.scripts:
            targets += [("script", url) for url in _SCRIPT_REDIRECT.findall(script.source)]
        if targets:
            section = ResultSection("Redirects", heuristic=4)
            for how, url in targets[:MAX_LINES]:
                section.add_line(f"{how}: {url}")
                if _web(url):
                    _tag(section, "network.static.uri", url)
            result.add_section(section)

    def _frames(self, result: Result, page: Page) -> None:
        if not page.iframes:
            return
        hidden = [src for src, is_hidden in page.iframes if is_hidden]
        section = ResultSection("Frames", heuristic=5 if hidden else None)
        for src, is_hidden in page.iframes[:MAX_LINES]:
            section.add_line(f"{'hidden ' if is_hidden else ''}iframe: {src}")
            if _web(src):
                _tag(section, "network.static.uri", src)
        result.add_section(section)

    def _links(self, result: Result, page: Page) -> None:
        web = [link for link in page.links if _web(link.href)]
        if not web:
            return
        section = ResultSection(f"Links ({len(web)})")
        for link in web[:MAX_LINES]:
            section.add_line(f"{link.text.strip()[:100]!r} -> {link.href[:300]}")
        for link in web:
            _tag(section, "network.static.uri", link.href)
            if host(link.href):
                _tag(section, "network.static.domain", host(link.href))
        result.add_section(section)
        mismatched = [(link, shown) for link in web if (shown := text_target_mismatch(link))]
        if mismatched:
            sub = ResultSection("Link text shows another host than its target", heuristic=6)
            sub.add_lines([f"shows {shown}, goes to {link.href[:300]}" for link, shown in mismatched], limit=MAX_LINES)
            section.add_subsection(sub)
