"""A page per file (by sha256): where it appeared, its results, a paged hex view and its strings,
and safe downloads (CaRT or zip by default; raw bytes only for analysts who ask for them).

Hex and strings are served a window at a time, so the page asks only for what is on screen; the
file's bytes are fetched once per process (the client's blob cache) and then sliced.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from litestar import Request, Response, get
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import QueryParameter

from bus.blobs import BlobError
from schemas.messages import FileNode, FileRef, walk
from schemas.workspace import Role
from sluice.neuter import Format, neutered
from sluice.web.api import DownloadOperation, Gateway, GatewayDep, Sha256Param, SidParam, attachment, problem, summary_of
from sluice.web.auth import VIEWER, who
from sluice.web.history import COUNT_CAP
from sluice.web.entropy import entropy_profile
from sluice.web.models import EntropyProfile, FilePage, HexPage, StringsPage
from sluice.web.query import Query
from sluice.web.strings import strings_in

HEX_PAGE_MAX = 64 * 1024
STRINGS_WINDOW_MAX = 4 * 1024 * 1024
SUBMISSIONS_SHOWN = 100

FormatParam = Annotated[Format, QueryParameter(description="cart (default) or zip (password `infected`): neutered; raw: the bytes themselves, analysts only")]


async def locate(gateway: Gateway, sha256: str) -> tuple[FileNode, FilePage]:
    """The file's node in the newest submission it appeared in, and its page; 404 if no indexed submission has it."""
    found = await anyio.to_thread.run_sync(gateway.index.history.search, Query(terms=[f"sha256:{sha256}"]), SUBMISSIONS_SHOWN, 0)
    for row in found.rows:
        summary = await gateway.client.result(row.sid)
        node = next((n for n in walk(summary.files) if n.sha256 == sha256 and not n.duplicate), None) if summary else None
        if node is not None:
            return node, FilePage(sha256, node.name, node.type, node.size, found.rows, min(found.matched, COUNT_CAP + 1),
                                  node.results, node.errors, row.sid)
    raise NotFoundException(detail=f"no indexed submission has a file {sha256}")


async def file_bytes(gateway: Gateway, node: FileNode) -> bytes:
    try:
        return await gateway.client.blobs.get(FileRef(node.sha256, node.size, node.name))
    except BlobError as exc:
        raise HTTPException(status_code=410, detail=str(exc)) from None


def check_raw(request: Request, fmt: Format) -> None:
    principal = who(request)
    if fmt is Format.RAW and not principal.role.may(Role.ANALYST):
        raise PermissionDeniedException(detail=f"raw bytes are for analysts; {principal.user} may download cart or zip")


async def safe_download(request: Request, gateway: Gateway, data: bytes, name: str, fmt: Format, target: str) -> Response[bytes]:
    """The bytes in the chosen form, as an attachment, recorded in the audit log."""
    check_raw(request, fmt)
    body, filename = await anyio.to_thread.run_sync(neutered, data, name, fmt)
    await gateway.record(request, "download", target, format=fmt.value, name=name[:200])
    return attachment(filename, body)


@get("/files/{sha256:str}", guards=[VIEWER], summary="A file's page: where it appeared and what the services said",
     responses={404: problem("no indexed submission has this file")})
async def file_page(request: Request, gateway: GatewayDep, sha256: Sha256Param) -> FilePage:
    _, page = await locate(gateway, sha256)
    await gateway.record(request, "view", sha256, what="file")
    return page


@get("/files/{sha256:str}/hex", guards=[VIEWER], summary="A window of the file's bytes, as hex",
     responses={404: problem("no indexed submission has this file"), 410: problem("the file's bytes have expired")})
async def file_hex(gateway: GatewayDep, sha256: Sha256Param,
                   offset: Annotated[int, QueryParameter(ge=0)] = 0,
                   length: Annotated[int, QueryParameter(ge=1, le=HEX_PAGE_MAX)] = 4096) -> HexPage:
    node, _ = await locate(gateway, sha256)
    data = await file_bytes(gateway, node)
    return HexPage(offset, len(data), data[offset:offset + length].hex())


@get("/files/{sha256:str}/strings", guards=[VIEWER], summary="ASCII and UTF-16LE strings starting in a window of the file",
     responses={404: problem("no indexed submission has this file"), 410: problem("the file's bytes have expired")})
async def file_strings(gateway: GatewayDep, sha256: Sha256Param,
                       offset: Annotated[int, QueryParameter(ge=0)] = 0,
                       window: Annotated[int, QueryParameter(ge=1024, le=STRINGS_WINDOW_MAX)] = 1024 * 1024,
                       min_length: Annotated[int, QueryParameter(ge=3, le=64)] = 6) -> StringsPage:
    node, _ = await locate(gateway, sha256)
    data = await file_bytes(gateway, node)
    end = min(len(data), offset + window)
    found, truncated = await anyio.to_thread.run_sync(strings_in, data, offset, end, min_length)
    return StringsPage(offset, max(end, offset), len(data), found, truncated)


@get("/files/{sha256:str}/entropy", guards=[VIEWER], summary="The file's entropy, block by block (up to 256 blocks)",
     responses={404: problem("no indexed submission has this file"), 410: problem("the file's bytes have expired")})
async def file_entropy(gateway: GatewayDep, sha256: Sha256Param) -> EntropyProfile:
    node, _ = await locate(gateway, sha256)
    data = await file_bytes(gateway, node)
    block_size, values = await anyio.to_thread.run_sync(entropy_profile, data)
    return EntropyProfile(len(data), block_size, values)


@get("/files/{sha256:str}/download", guards=[VIEWER], operation_class=DownloadOperation, summary="Download the file (CaRT by default)",
     responses={403: problem("raw bytes need the analyst role"), 404: problem("no indexed submission has this file"),
                410: problem("the file's bytes have expired")})
async def file_download(request: Request, gateway: GatewayDep, sha256: Sha256Param, format: FormatParam = Format.CART) -> Response[bytes]:
    check_raw(request, format)
    node, _ = await locate(gateway, sha256)
    return await safe_download(request, gateway, await file_bytes(gateway, node), node.name or sha256, format, sha256)



@get("/submissions/{sid:str}/files/{sha256:str}", guards=[VIEWER], operation_class=DownloadOperation,
     summary="Download a file of the tree (CaRT by default)",
     responses={403: problem("raw bytes need the analyst role"), 404: problem("no such submission or file"),
                410: problem("the file's bytes have expired")})
async def download_file(request: Request, gateway: GatewayDep, sid: SidParam, sha256: Sha256Param,
                        format: FormatParam = Format.CART) -> Response[bytes]:
    check_raw(request, format)
    summary = await summary_of(gateway, sid)
    node = next((n for n in walk(summary.files) if n.sha256 == sha256), None)
    if node is None:
        raise NotFoundException(detail=f"{sid} has no file {sha256}")
    return await safe_download(request, gateway, await file_bytes(gateway, node), node.name or sha256, format, f"{sid}/{sha256}")


@get("/submissions/{sid:str}/object", guards=[VIEWER], operation_class=DownloadOperation,
     summary="Download a supplementary file or report object (CaRT by default)",
     responses={403: problem("raw bytes need the analyst role"), 404: problem("no such submission or object"),
                410: problem("the object's bytes have expired")})
async def download_object(request: Request, gateway: GatewayDep, sid: SidParam,
                          name: Annotated[str, QueryParameter(min_length=1, description="the object's name")],
                          format: FormatParam = Format.CART) -> Response[bytes]:
    check_raw(request, format)
    summary = await summary_of(gateway, sid)
    try:
        obj, data = await gateway.client.fetch_object(summary, name)
    except KeyError:
        raise NotFoundException(detail=f"{sid} has no object {name!r}") from None
    except BlobError as exc:
        raise HTTPException(status_code=410, detail=str(exc)) from None
    return await safe_download(request, gateway, data, obj.name, format, f"{sid}/{name}")


ROUTES = [file_page, file_hex, file_strings, file_entropy, file_download, download_file, download_object]
