"""A mesh with the web front on a free loopback port, for the API and browser tests.

`Showcase` produces one section of every body type, tags, a heuristic, an extracted child and a
supplementary file, and echoes the sample's own first line into titles, bodies and tags: a
sample whose text is markup is how a hostile sample would try to script the page.
"""

from __future__ import annotations

import contextlib
from functools import partial
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import httpx

from services.sdk import Result, ResultSection, ServiceBase
from services.sdk.result import ResultJSONSection, ResultKeyValueSection, ResultTableSection, ResultURLSection
from sluice.onebox import onebox
from sluice.web.serve import listen, serve, url_of
from svcs import Raiser, make

HOSTILE = b'<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'


class Showcase(ServiceBase):
    def execute(self, request) -> None:
        line = request.file_contents.decode("utf-8", "replace").splitlines()[0] if request.file_size else ""
        # The child scores 0, a field the summary then leaves out: the page must not show "undefined".
        text = ResultSection(f"first line: {line}", body=line, heuristic=1 if request.depth == 0 else None)
        text.add_tag("file.string.extracted", line or "(empty)")
        text.add_tag("network.static.domain", "evil.example")
        facts = ResultKeyValueSection("facts", {"size": request.file_size, "said": line})
        facts.add_subsection(ResultTableSection("rows", [{"offset": 0, "text": line}, {"offset": 16, "text": "plain"}]))
        links = ResultURLSection("links")
        links.add_url("javascript:document.title='pwned'", name="click me")
        links.add_url("https://example.com/doc", name="documentation")
        sections = [text, facts, ResultJSONSection("as json", {"line": line, "n": [1, 2]}), links]
        if request.depth == 0:
            request.add_extracted(b"inner file\n", "inner.txt", "found inside")
            request.add_supplementary(line.encode() or b"-", "said.txt", "what the sample said")
        request.result = Result(sections)


@dataclass
class WebMesh:
    url: str  # the web front's base URL, ending in /
    http: httpx.AsyncClient


def showcase():
    return [make(Showcase, "showcase"), make(Raiser, "raiser")]


@contextlib.asynccontextmanager
async def web_front(nats_url: str, prefix: str, max_upload: int = 1 << 20, oidc=None) -> AsyncIterator[WebMesh]:
    """One web front on a free loopback port, serving until the block exits (start as many as wanted)."""
    stop = anyio.Event()
    sock = listen("127.0.0.1:0")
    url = url_of(sock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(serve, nats_url, prefix, sock, stop, max_upload, oidc=oidc))
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
            # No account yet, on loopback: the local user, whose requests carry its CSRF token.
            http.headers["X-CSRF-Token"] = (await http.get("/api/me")).json()["csrf"]
            try:
                yield WebMesh(url, http)
            finally:
                stop.set()


@contextlib.asynccontextmanager
async def web_mesh(nats_url: str, prefix: str, services=None, max_upload: int = 1 << 20, oidc=None) -> AsyncIterator[WebMesh]:
    async with onebox(nats_url, prefix, services if services is not None else showcase()):
        async with web_front(nats_url, prefix, max_upload, oidc) as web:
            yield web
