"""The web front's API from Python, with an API key: for scripts (and `sluice --api`) that reach a
Sluice through its web front rather than NATS.

    async with WebClient("https://sluice.example.org", api_key) as web:
        sid = await web.submit_file(Path("sample.exe"))
        summary = await web.wait(sid)
        cart_bytes = await web.download_file(sid, summary.files[0].sha256)   # CaRT unless format="zip"/"raw"
        hits = await web.search("tag:network.static.domain=evil.example")

Same wire types as the NATS client (`Summary` decoded strictly), same neutered downloads as the page.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import httpx
import msgspec

from schemas.messages import SID, Summary
from sluice.neuter import Format

API_URL_ENV = "SLUICE_API_URL"
API_KEY_ENV = "SLUICE_API_KEY"
POLL = 0.5  # seconds between asks while a submission is pending (202)


class WebError(RuntimeError):
    """The web front refused or failed a request; the message is its own explanation."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status


def as_text(service_params: dict[str, dict[str, object]]) -> list[str]:
    """Service parameters as the upload's query string carries them (`SERVICE.NAME=VALUE`, booleans
    as true/false); the web front reads each by the type its service's manifest declares."""
    def text(value: object) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    return [f"{service}.{name}={text(value)}" for service, values in service_params.items() for name, value in values.items()]


class WebClient:
    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 60.0) -> None:
        url = url or os.environ.get(API_URL_ENV, "")
        key = api_key or os.environ.get(API_KEY_ENV, "")
        if not url or not key:
            raise ValueError(f"the web front's URL and an API key are needed (arguments, or ${API_URL_ENV} and ${API_KEY_ENV})")
        self.http = httpx.AsyncClient(base_url=url.rstrip("/") + "/api", timeout=timeout,
                                      headers={"Authorization": f"Bearer {key}"})

    async def __aenter__(self) -> WebClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = await self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise WebError(response.status_code, str(detail)[:500])
        return response

    async def submit_file(self, path: Path, deep_scan: bool = False, ignore_cache: bool = False,
                          services: list[str] | None = None, service_params: dict[str, dict[str, object]] | None = None) -> str:
        """`service_params`: service -> parameter -> value (e.g. {"extract": {"password": "s3cret"}}),
        checked by the web front against the services' manifests."""
        params = {"name": Path(path).name, "deep_scan": deep_scan, "ignore_cache": ignore_cache, "service": services or [],
                  "param": as_text(service_params or {})}
        response = await self._call("POST", "/submissions", params=params, content=Path(path).read_bytes(),
                                    headers={"Content-Type": "application/octet-stream"})
        return response.json()["sid"]

    async def submit_sample(self, kind: str, value: str, deep_scan: bool = False, ignore_cache: bool = False,
                            services: list[str] | None = None, service_params: dict[str, dict[str, object]] | None = None) -> str:
        """A URI, domain or IP (`kind` "uri", "domain" or "ip")."""
        body = {"kind": kind, "value": value, "deep_scan": deep_scan, "ignore_cache": ignore_cache,
                "services": services or [], "service_params": service_params or {}}
        return (await self._call("POST", "/samples", json=body)).json()["sid"]

    async def result(self, sid: str) -> Summary | None:
        """The finished submission, or None while it is being analysed (WebError 404 if unknown)."""
        if not SID.match(sid):
            raise ValueError(f"{sid[:80]!r} is not a submission id")
        response = await self._call("GET", f"/submissions/{sid}")
        return None if response.status_code == 202 else msgspec.json.decode(response.content, type=Summary)

    async def wait(self, sid: str, timeout: float = 300.0) -> Summary:
        with anyio.fail_after(timeout):
            while (summary := await self.result(sid)) is None:
                await anyio.sleep(POLL)
        return summary

    async def search(self, query: str, limit: int = 100, offset: int = 0) -> dict:
        return (await self._call("GET", "/submissions", params={"q": query, "limit": limit, "offset": offset})).json()

    async def download_file(self, sid: str, sha256: str, format: Format = Format.CART) -> bytes:
        return (await self._call("GET", f"/submissions/{sid}/files/{sha256}", params={"format": Format(format).value})).content

    async def download_object(self, sid: str, name: str, format: Format = Format.CART) -> bytes:
        return (await self._call("GET", f"/submissions/{sid}/object", params={"name": name, "format": Format(format).value})).content
