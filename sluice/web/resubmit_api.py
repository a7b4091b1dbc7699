"""Analyse a submission (or one file of it) again: deep scan, ignore the cache, choose services,
and fill in each service's submission parameters (e.g. the extract service's archive password).

The parameters a service takes come from its manifest (`submission_params`); the form is built
from `GET /api/services/params`, and what comes back is checked against the same manifests
(sluice.web.service_params).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import JSONBody

from schemas.messages import FileNode, FileRef, SampleKind, SubmissionParams
from schemas.samples import SampleError, sample_ref
from sluice.client import SubmitError
from sluice.web.api import JSON_MAX_BODY, Gateway, GatewayDep, Sha256Param, SidParam, problem, submitted_by, summary_of
from sluice.web.auth import SUBMITTER, VIEWER
from sluice.web.files_api import locate
from sluice.web.models import Submitted
from sluice.web.service_params import checked, manifest_params
from sluice.web.status import known_services

REFUSALS = {400: problem("an unknown service or parameter, or a value of the wrong type"),
            413: problem(f"the request body is over {JSON_MAX_BODY} bytes")}


class ParamField(msgspec.Struct):
    name: str
    type: str  # str, int, bool, list
    default: Any
    choices: list[Any] = []  # for type list


class ServiceForm(msgspec.Struct):
    name: str
    params: list[ParamField]  # empty: none, or a service whose manifest this web front does not have


class Resubmission(msgspec.Struct):
    deep_scan: bool = False
    ignore_cache: bool = False
    services: list[Annotated[str, msgspec.Meta(max_length=64)]] = []  # empty: every service that takes the files
    service_params: dict[str, dict[str, Any]] = {}  # service -> parameter -> value


def _ref(node: FileNode) -> FileRef:
    if node.kind is SampleKind.FILE:
        return FileRef(node.sha256, node.size, node.name)
    try:
        return sample_ref(node.kind, node.name)
    except SampleError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


async def _resubmit(request: Request, gateway: Gateway, nodes: list[FileNode], data: Resubmission, origin: str) -> Submitted:
    known = await known_services(gateway.client.js, gateway.client.names)
    unknown = sorted(set(data.services) - known)
    if unknown:
        raise HTTPException(status_code=400, detail=f"no service named {', '.join(unknown)}; known: {', '.join(sorted(known)) or 'none'}")
    params = SubmissionParams(deep_scan=data.deep_scan, ignore_cache=data.ignore_cache, services=list(data.services),
                              service_params=checked(data.service_params, known))
    try:
        sid = await gateway.client.submit_refs([_ref(n) for n in nodes], params, {**submitted_by(request), "resubmitted_from": origin})
    except SubmitError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    await gateway.submitted(request, sid)
    await gateway.record(request, "resubmit", sid, origin=origin, deep_scan=str(data.deep_scan),
                         services=",".join(data.services), params=",".join(f"{s}.{n}" for s, v in params.service_params.items() for n in v))
    return Submitted(sid, nodes[0].name if nodes else "", sum(n.size for n in nodes))


@get("/services/params", guards=[VIEWER], summary="The services a submission may choose, with the parameters each takes")
async def service_forms(gateway: GatewayDep) -> list[ServiceForm]:
    declared = manifest_params()
    return [ServiceForm(name, [ParamField(p.name, p.type, p.default, list(p.list)) for p in declared.get(name, ())])
            for name in sorted(await known_services(gateway.client.js, gateway.client.names))]


@post("/submissions/{sid:str}/resubmit", status_code=201, guards=[SUBMITTER], summary="Analyse a submission's files again",
      request_max_body_size=JSON_MAX_BODY, responses={**REFUSALS, 404: problem("no such submission")})
async def resubmit_submission(request: Request, gateway: GatewayDep, sid: SidParam, data: JSONBody[Resubmission]) -> Submitted:
    summary = await summary_of(gateway, sid)
    if not summary.files:
        raise NotFoundException(detail=f"{sid} has no files")
    return await _resubmit(request, gateway, summary.files, data, sid)


@post("/files/{sha256:str}/resubmit", status_code=201, guards=[SUBMITTER], summary="Analyse one file again, as a submission of its own",
      request_max_body_size=JSON_MAX_BODY, responses={**REFUSALS, 404: problem("no indexed submission has this file")})
async def resubmit_file(request: Request, gateway: GatewayDep, sha256: Sha256Param, data: JSONBody[Resubmission]) -> Submitted:
    node, _ = await locate(gateway, sha256)
    return await _resubmit(request, gateway, [node], data, sha256)


ROUTES = [service_forms, resubmit_submission, resubmit_file]
