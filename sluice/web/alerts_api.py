"""Alerts: submissions at or above the alert score, with a triage state, an owner and comments.

Triage lives in NATS KV (one key per submission, a few revisions of history), so every web front
shows the same state; each front mirrors the bucket into its index to filter and sort, and pushes
changes to open pages as `triage` events. Updates are compare-and-set on the key's revision: two
analysts changing one alert at once both land (one retries on the other's result), neither is lost.
"""

from __future__ import annotations

import time
from typing import Annotated

import anyio
import msgspec
from litestar import Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import JSONBody, QueryParameter
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from bus.codec import BadMessage, decode, encode
from bus.kv import write_at
from schemas.limits import Limits
from schemas.workspace import Comment, Triage, TriageState
from sluice.web.api import JSON_MAX_BODY, Gateway, GatewayDep, SidParam, problem
from sluice.web.auth import ANALYST, VIEWER, who
from sluice.web.models import AlertList
from sluice.web.query import Query

ATTEMPTS = 8  # compare-and-set retries under contention
COMMENTS_KEPT = 200


class TriageChange(msgspec.Struct):
    """What to change; fields left out stay as they are."""

    state: TriageState | None = None
    owner: Annotated[str, msgspec.Meta(max_length=64)] | None = None  # "" un-assigns
    comment: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)] | None = None


@get("/alerts", guards=[VIEWER], summary="Submissions at or above the alert score, newest first, with their triage")
async def list_alerts(gateway: GatewayDep, triage_state: Annotated[TriageState | None, QueryParameter(name="state")] = None,
                      owner: Annotated[str | None, QueryParameter(max_length=64, description="'' for unassigned")] = None,
                      limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
                      offset: Annotated[int, QueryParameter(ge=0, le=100_000)] = 0) -> AlertList:
    items, matched = await anyio.to_thread.run_sync(gateway.index.history.alerts, Limits.alert_threshold,
                                                    triage_state.value if triage_state else None, owner, limit, offset)
    return AlertList(items, matched, Limits.alert_threshold, offset)


async def _current(gateway: Gateway, sid: str) -> tuple[Triage, int]:
    """The alert's triage and its KV revision (0: never triaged)."""
    try:
        entry = await gateway.triage.get(sid)
    except KeyNotFoundError:
        return Triage(sid), 0
    try:
        return (decode(entry.value, Triage) if entry.value else Triage(sid)), entry.revision
    except BadMessage:
        return Triage(sid), entry.revision


async def _is_alert(gateway: Gateway, sid: str) -> bool:
    query = Query(sid=sid, min_score=Limits.alert_threshold)
    return bool((await anyio.to_thread.run_sync(gateway.index.history.search, query, 1, 0)).rows)


@get("/alerts/{sid:str}", guards=[VIEWER], summary="An alert's triage: state, owner, comments",
     responses={404: problem("not an alert (unknown, or under the alert score)")})
async def get_triage(gateway: GatewayDep, sid: SidParam) -> Triage:
    if not await _is_alert(gateway, sid):
        raise NotFoundException(detail=f"{sid} is not an alert (unknown, or scored under {Limits.alert_threshold})")
    return (await _current(gateway, sid))[0]


@post("/alerts/{sid:str}/triage", status_code=200, guards=[ANALYST], summary="Change an alert's state or owner, or comment on it",
      request_max_body_size=JSON_MAX_BODY,
      responses={400: problem("an unknown owner"), 404: problem("not an alert"), 413: problem(f"the request body is over {JSON_MAX_BODY} bytes")})
async def change_triage(request: Request, gateway: GatewayDep, sid: SidParam, data: JSONBody[TriageChange]) -> Triage:
    if not await _is_alert(gateway, sid):
        raise NotFoundException(detail=f"{sid} is not an alert (unknown, or scored under {Limits.alert_threshold})")
    if data.state is None and data.owner is None and data.comment is None:
        return (await _current(gateway, sid))[0]  # nothing to change
    user = who(request).user
    if data.owner and data.owner != user and await gateway.accounts.user(data.owner) is None:
        raise HTTPException(status_code=400, detail=f"no user {data.owner!r} to assign it to")
    for _ in range(ATTEMPTS):
        triage, revision = await _current(gateway, sid)
        changed = msgspec.structs.replace(
            triage, updated_at=time.time(), updated_by=user,
            state=data.state if data.state is not None else triage.state,
            owner=data.owner if data.owner is not None else triage.owner,
            comments=[*triage.comments, Comment(user, time.time(), data.comment)][-COMMENTS_KEPT:] if data.comment else triage.comments)
        try:
            await write_at(gateway.triage, sid, encode(changed), revision)
        except KeyWrongLastSequenceError:
            continue  # someone else changed it meanwhile: apply ours on top of theirs
        await gateway.record(request, "triage", sid, **{k: v for k, v in (("state", data.state), ("owner", data.owner),
                                                                          ("comment", data.comment and data.comment[:200])) if v is not None})
        return changed
    raise HTTPException(status_code=409, detail="the alert kept changing under us; try again")


ROUTES = [list_alerts, get_triage, change_triage]
