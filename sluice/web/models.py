"""What the HTTP API sends and receives, as msgspec Structs (Litestar documents and validates them).

These are HTTP shapes, not NATS wire messages: the summaries themselves are served as the
`schemas.messages.Summary` the dispatcher published.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec

from schemas.messages import ResultView, SampleKind, ServiceError
from schemas.verdict import VERDICTS

Verdict = enum.StrEnum("Verdict", [name for _, name in VERDICTS] + ["safe"])
"""The verdict names, as the dispatcher's scoring gives them (a filter value the API checks)."""

SampleType = enum.StrEnum("SampleType", [kind.value for kind in SampleKind if kind is not SampleKind.FILE])
"""The kinds of sample that are not files: uri, domain, ip."""


class SubmissionRow(msgspec.Struct):
    """One completed submission in the list: enough to show a line and to filter, not the tree."""

    sid: str
    verdict: str
    score: int
    name: str  # the first root file's name (or the sample's value)
    type: str  # its type
    file_count: int
    errors: int
    completed_at: float
    submitter: str = ""  # the account that submitted it through the web front or the API


class SubmissionList(msgspec.Struct):
    items: list[SubmissionRow]
    matched: int  # how many indexed submissions match (counted up to 1,001: "more than 1,000")
    indexed: int  # how many submissions the index holds
    offset: int = 0  # of the first item among the matches (newest first)


class Pending(msgspec.Struct):
    """A submission this web front sent that has not finished yet."""

    sid: str
    state: str = "analysing"


class Submitted(msgspec.Struct):
    sid: str
    name: str
    size: int


class SampleRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A URI, domain or IP to analyse."""

    kind: SampleType
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    deep_scan: bool = False
    ignore_cache: bool = False
    services: list[Annotated[str, msgspec.Meta(max_length=64)]] = []  # empty: every service that takes it
    service_params: dict[str, dict[str, Any]] = {}  # service -> parameter -> value (GET /api/services/params)


class SampleSubmitted(msgspec.Struct):
    sid: str
    kind: str
    value: str


class Failure(msgspec.Struct):
    """A service error seen in a completed submission."""

    sid: str
    file: str
    type: str
    message: str
    at: float


class ServiceStatus(msgspec.Struct):
    name: str
    alive: bool  # an instance heartbeated within the directory's staleness window
    instances: int
    version: str
    stage: str
    queued: int  # tasks waiting on the service's consumer
    in_flight: int  # delivered, not yet acknowledged
    last_seen: float  # epoch seconds of the freshest heartbeat (0: none while the gateway ran)
    failures: list[Failure]  # the most recent, newest first


class Limits(msgspec.Struct):
    """What the gateway accepts, so a client can refuse a file before sending it."""

    max_upload: int  # bytes


class Problem(msgspec.Struct):
    """Litestar's error body."""

    status_code: int
    detail: str
    extra: dict[str, object] | list[object] | None = None


class FilePage(msgspec.Struct):
    """One file (by sha256) across the history: what it is, where it appeared, what the services said."""

    sha256: str
    name: str
    type: str
    size: int
    submissions: list[SubmissionRow]  # newest first, up to 100
    seen_in: int  # how many submissions it appeared in (capped like a search's count)
    results: list[ResultView]  # from the newest submission it appeared in
    errors: list[ServiceError]
    latest_sid: str


class HexPage(msgspec.Struct):
    offset: int
    size: int  # the whole file's
    hex: str  # the bytes from `offset`, two hex digits each


class FoundString(msgspec.Struct):
    offset: int
    encoding: str  # ascii or utf-16le
    text: str


class StringsPage(msgspec.Struct):
    offset: int  # the window searched: [offset, next_offset)
    next_offset: int  # where the next page starts (== size: the end)
    size: int
    strings: list[FoundString]
    truncated: bool  # the window held more strings than one page shows


class AlertRow(msgspec.Struct):
    """A submission at or above the alert score, with its triage."""

    submission: SubmissionRow
    state: str  # new, in_progress, malicious, benign, false_positive
    owner: str
    comments: int


class AlertList(msgspec.Struct):
    items: list[AlertRow]
    matched: int
    threshold: int
    offset: int = 0


class EntropyProfile(msgspec.Struct):
    size: int  # the file's
    block_size: int  # bytes per value
    values: list[float]  # bits per byte (0 to 8), one per block, in file order
