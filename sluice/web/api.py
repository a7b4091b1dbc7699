"""The REST API: submit files and samples, list and read submissions, download their files, watch.

Every handler gets the `Gateway` (the NATS client and the submission index) by injection;
parameters are validated by Litestar from their annotations, so the OpenAPI description and
what is enforced come from the same place.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

import anyio
import msgspec
from litestar import HttpMethod, Request, Response, get, post, route
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from nats.js.kv import KeyValue

from schemas.messages import SID, SubmissionParams, Summary, walk
from sluice.client import Client, SubmitError
from sluice.web.accounts import Accounts
from sluice.web.auth import SUBMITTER, VIEWER, LocalMode, remote_of, who
from sluice.web.index import SubmissionIndex
from sluice.web.models import (
    Limits, Pending, Problem, SampleRequest, SampleSubmitted, ServiceStatus, SubmissionList, Submitted, Verdict,
)
from sluice.web.query import SCORE_BOUND, QueryError, parse
from sluice.web.pending import PendingSubmissions
from sluice.web.ratelimit import LoginThrottle
from sluice.web.service_params import checked, from_text
from sluice.web.status import known_services, service_status
from sluice.web.stores import audit

BINARY = "application/octet-stream"
KEEPALIVE = 15.0  # seconds between comments on an idle event stream (proxies close silent ones)
DRAIN_MAX = 8 * 1024 * 1024  # bytes of a refused upload read and dropped so the client sees the 413
JSON_MAX_BODY = SAMPLE_MAX_BODY = 16 * 1024  # a JSON request (a URI with its options, a resubmission); the app-wide limit is the (large) upload limit

SidParam = Annotated[str, PathParameter(pattern=SID.pattern, description="submission id")]
Sha256Param = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{64}$", description="the file's sha256")]


UPLOADS_AT_ONCE = 4  # uploads read at the same time; more wait their turn (memory: this × the limit, twice)


@dataclass
class Gateway:
    """What every handler works with, set up by the app's lifespan."""

    client: Client
    index: SubmissionIndex
    max_upload: int
    accounts: Accounts
    local: LocalMode
    triage: KeyValue
    throttle: LoginThrottle
    pending: PendingSubmissions
    secure_cookies: bool = False
    oidc: object | None = None  # a sluice.web.oidc.OidcConfig (that module builds on this one; Litestar resolves these hints)
    uploads: anyio.Semaphore = field(default_factory=lambda: anyio.Semaphore(UPLOADS_AT_ONCE))

    async def submitted(self, request: Request, sid: str) -> None:
        """`sid` is in flight: every web front answers 202 for it until its summary arrives."""
        await self.pending.add(sid, who(request).user)

    async def record(self, request: Request, action: str, target: str = "", user: str = "", **detail: str) -> None:
        """An audit event for what this request did (by its principal, unless `user` says who)."""
        principal = request.scope.get("user")
        await audit(self.client.js, self.client.names, user or (principal.user if principal else ""), action, target,
                    remote_of(request), **detail)


GatewayDep = NamedDependency[Gateway]


def problem(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=Problem, description=description, generate_examples=False)


def binary() -> OpenAPIMediaType:
    return OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))


@dataclass
class UploadOperation(Operation):
    """The upload's body is the file itself, read as a stream: described here, since no typed `data` parameter says it."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True, description="the file's bytes (Content-Type: application/octet-stream)",
            content={BINARY: binary()})


@dataclass
class DownloadOperation(Operation):
    def __post_init__(self) -> None:
        self.responses["200"].content = {BINARY: binary()}


@dataclass
class EventStreamOperation(Operation):
    def __post_init__(self) -> None:
        self.responses["200"].content = {"text/event-stream": OpenAPIMediaType(schema=Schema(
            type=OpenAPIType.STRING, description="`submission` events (a SubmissionRow as JSON), `triage` events (an alert's Triage), `hello` once connected"))}


async def checked_params(gateway: Gateway, deep_scan: bool, ignore_cache: bool, services: Iterable[str] = (),
                         param: tuple[str, ...] = (), service_params: dict[str, dict[str, Any]] | None = None) -> SubmissionParams:
    """The submission's parameters, refused (400) now if a service is unknown (it would only come
    back as a `service_down` error) or a service parameter is not what its manifest declares."""
    services = list(services)
    service_params = service_params or {}
    if services or param or service_params:
        known = await known_services(gateway.client.js, gateway.client.names)
        unknown = sorted(set(services) - known)
        if unknown:
            raise HTTPException(status_code=400, detail=f"no service named {', '.join(unknown)}; known: {', '.join(sorted(known)) or 'none'}")
        service_params = {**checked(service_params, known), **from_text(param, known)}
    return SubmissionParams(deep_scan=deep_scan, ignore_cache=ignore_cache, services=services, service_params=service_params)


def submitted_by(request: Request) -> dict[str, str]:
    """The submission's metadata naming its submitter (searchable as `submitter:NAME`)."""
    return {"submitter": who(request).user}


def require_content_type(request: Request, expected: str) -> None:
    """Only a type a cross-site form cannot send: another origin's page cannot submit through an analyst's browser."""
    if request.content_type[0] != expected:
        raise HTTPException(status_code=415, detail=f"send the body as {expected}")


async def _discard_rest(request: Request) -> None:
    """Read (and drop) what is left of a refused upload, up to DRAIN_MAX, so the client reads the 413
    instead of a connection reset mid-send; a larger remainder is cut off by closing the connection."""
    if (request.content_length or 0) > DRAIN_MAX:
        return
    left = DRAIN_MAX
    while left > 0:
        message = await request.receive()
        if message["type"] != "http.request":
            return
        left -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


@post("/submissions", status_code=201, guards=[SUBMITTER], operation_class=UploadOperation, summary="Submit a file",
      responses={413: problem("the file is over the upload limit"), 415: problem("not application/octet-stream")})
async def submit_file(
    request: Request, gateway: GatewayDep,
    name: Annotated[str, QueryParameter(min_length=1, max_length=255, description="the file's name")] = "upload",
    deep_scan: FromQuery[bool] = False, ignore_cache: FromQuery[bool] = False,
    service: Annotated[tuple[str, ...], QueryParameter(description="only these services (repeat the parameter)")] = (),
    param: Annotated[tuple[str, ...], QueryParameter(
        description="a service's submission parameter as SERVICE.NAME=VALUE, e.g. `extract.password=infected` "
                    "(repeat the parameter; GET /api/services/params lists them)")] = (),
) -> Submitted:
    """The request body is the file. It is read as it arrives and refused (413) as soon as it passes the limit."""
    require_content_type(request, BINARY)
    async with gateway.uploads:
        data = bytearray()
        try:
            async for chunk in request.stream():
                data += chunk
        except HTTPException as exc:
            if exc.status_code != 413:
                raise
            await _discard_rest(request)
            raise HTTPException(status_code=413, detail=f"the file is over the {gateway.max_upload}-byte upload limit") from None
        if not data:
            raise HTTPException(status_code=400, detail=f"{name}: the file is empty; nothing to analyse")
        params = await checked_params(gateway, deep_scan, ignore_cache, service, param)
        try:
            sid = await gateway.client.submit_bytes([(name, bytes(data))], params,
                                                    metadata=submitted_by(request))
        except SubmitError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
    await gateway.submitted(request, sid)
    await gateway.record(request, "submit", sid, name=name, size=str(len(data)))
    return Submitted(sid, name, len(data))


@post("/samples", status_code=201, guards=[SUBMITTER], summary="Submit a URI, domain or IP", request_max_body_size=SAMPLE_MAX_BODY,
      responses={413: problem(f"the request body is over {SAMPLE_MAX_BODY} bytes"), 415: problem("not application/json")})
async def submit_sample(request: Request, data: JSONBody[SampleRequest], gateway: GatewayDep) -> SampleSubmitted:
    """`data` declares (and documents) the body; it is decoded again here, strictly, because
    Litestar decodes bodies leniently (`"ignore_cache": 0` would pass as false)."""
    require_content_type(request, "application/json")
    try:
        sample = msgspec.json.decode(await request.body(), type=SampleRequest)
    except msgspec.ValidationError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    params = await checked_params(gateway, sample.deep_scan, sample.ignore_cache, sample.services, service_params=sample.service_params)
    try:
        sid = await gateway.client.submit_sample(sample.kind.value, sample.value, params,
                                                 metadata=submitted_by(request))
    except (SubmitError, ValueError) as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    await gateway.submitted(request, sid)
    await gateway.record(request, "submit", sid, kind=sample.kind.value, value=sample.value[:200])
    return SampleSubmitted(sid, sample.kind.value, sample.value)


@route("/submissions", http_method=HttpMethod.OPTIONS, include_in_schema=False)
async def submissions_options() -> Response[None]:
    """Litestar 2's automatic OPTIONS answer on a path with two handlers lists only one of their
    methods (litestar issue 4169, fixed in 3), which schemathesis rightly flagged."""
    return Response(None, status_code=204, headers={"Allow": "GET, OPTIONS, POST"})


@get("/submissions", guards=[VIEWER], summary="Search the whole history, newest first", responses={400: problem("the query cannot be understood")})
async def list_submissions(
    gateway: GatewayDep,
    q: Annotated[str, QueryParameter(max_length=2000, description="the search language, e.g. `tag:network.static.domain=evil.example score>=500`, a bare md5/sha1/sha256, or words")] = "",
    verdict: FromQuery[Verdict | None] = None,
    min_score: Annotated[int | None, QueryParameter(ge=-SCORE_BOUND, le=SCORE_BOUND)] = None,
    max_score: Annotated[int | None, QueryParameter(ge=-SCORE_BOUND, le=SCORE_BOUND)] = None,
    file_type: Annotated[str | None, QueryParameter(max_length=200, description="a type or a branch of the taxonomy, e.g. `executable`")] = None,
    tag: Annotated[str | None, QueryParameter(max_length=500, description="words of any tag value, case-insensitive")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    offset: Annotated[int, QueryParameter(ge=0, le=100_000)] = 0,
) -> SubmissionList:
    try:
        query = parse(q)
    except QueryError as exc:
        raise HTTPException(status_code=400, detail=f"query: {exc}") from None
    if verdict:
        query.verdicts.append(verdict.value)
    query.narrow_score(min_score, max_score)
    if file_type:
        query.type_branches.append(file_type.casefold().rstrip("/"))
    if tag:
        query.words.append(tag)
    history = gateway.index.history
    found = await anyio.to_thread.run_sync(history.search, query, limit, offset)
    return SubmissionList(found.rows, found.matched, await anyio.to_thread.run_sync(history.count), offset)


async def summary_of(gateway: Gateway, sid: str) -> Summary:
    summary = await gateway.client.result(sid)
    if summary is None:
        raise NotFoundException(detail=f"no finished submission {sid}")
    return summary


@get("/submissions/{sid:str}", guards=[VIEWER], summary="A finished submission's verdict tree (202 while it is being analysed)",
     responses={202: ResponseSpec(data_container=Pending, description="submitted through a web front, not finished yet",
                                  generate_examples=False),
                404: problem("unknown or expired")})
async def get_submission(request: Request, gateway: GatewayDep, sid: SidParam) -> Summary:
    summary = await gateway.client.result(sid)
    if summary is None:
        if gateway.client.pending(sid) or await gateway.pending.known(sid):
            return Response(Pending(sid), status_code=202)
        raise NotFoundException(detail=f"no submission {sid} (unknown, or expired from the history)")
    await gateway.record(request, "view", sid, what="submission")
    for node in walk(summary.files):
        for view in node.results:  # inline bytes of small objects are for services, not for the page
            view.objects = [msgspec.structs.replace(obj, file=msgspec.structs.replace(obj.file, data=None)) for obj in view.objects]
    return summary


def attachment(name: str, data: bytes) -> Response[bytes]:
    """Bytes a hostile sample produced: always a download, never something the browser renders or sniffs."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120].strip(".") or "file"
    return Response(data, media_type=BINARY, headers={
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name[:200], safe='')}",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    })


@get("/limits", guards=[VIEWER], summary="What the gateway accepts")
async def limits(gateway: GatewayDep) -> Limits:
    return Limits(max_upload=gateway.max_upload)


@get("/services", guards=[VIEWER], summary="Services: alive, queue depth, recent failures")
async def list_services(gateway: GatewayDep) -> list[ServiceStatus]:
    return await service_status(gateway.client.js, gateway.client.names, gateway.index)


@get("/stream", guards=[VIEWER], operation_class=EventStreamOperation, summary="Completed submissions as they finish (server-sent events)")
async def stream(gateway: GatewayDep) -> ServerSentEvent:
    async def events() -> AsyncIterator[ServerSentEventMessage]:
        with gateway.index.listen() as rows:
            yield ServerSentEventMessage(event="hello", data=json.dumps({"indexed": gateway.index.applied}))
            while True:
                row = None
                with anyio.move_on_after(KEEPALIVE):
                    try:
                        row = await rows.receive()
                    except anyio.EndOfStream:
                        return  # dropped (too slow) or shutting down: the browser reconnects
                if row is None:
                    yield ServerSentEventMessage(comment="keep-alive")
                else:
                    name, payload = row
                    yield ServerSentEventMessage(event=name, data=msgspec.json.encode(payload).decode())

    return ServerSentEvent(events())


# The explicit OPTIONS handler goes first: the route its path gets is built from the first handler registered.
ROUTES = [submissions_options, submit_file, submit_sample, list_submissions, get_submission, limits, list_services, stream]
