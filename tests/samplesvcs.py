"""Small services for the sample tests: they take URIs, domains and IPs and relate samples from a table."""

from __future__ import annotations

import hashlib

from schemas.messages import FileRef, Relation, SampleKind
from services.sdk import Result, ResultSection, ServiceBase
from services.sdk.request import Related
from svcs import make

SAMPLE_KINDS = ["uri", "domain", "ip"]


class Relater(ServiceBase):
    """Relates what its config's `links` list for the sample it is given (by value, or a file's name).

    A link is `[kind, value]` or `[kind, value, relation]`, related with `add_related` as it is (so
    a test can hand it a bad kind too); an `extract` link is a file, `value` its name and its
    bytes. What it saw and what `add_related` answered are kept for the test to read.
    """

    def __init__(self, manifest) -> None:
        super().__init__(manifest)
        self.seen: list[tuple[str, str, str]] = []  # (kind, type, value) of each sample it analysed
        self.answers: list[bool] = []

    def execute(self, request) -> None:
        self.seen.append((request.sample_kind.value, request.file_type, request.sample))
        for kind, value, *relation in self.config.get("links", {}).get(request.sample, []):
            if kind == "extract":
                request.add_extracted(value.encode(), value, relation=relation[0] if relation else Relation.DROPPED_BY)
            else:
                self.answers.append(request.add_related(kind, value, *relation))
        request.result = Result([ResultSection(f"{request.sample_kind.value} {request.sample}", heuristic=1)])


class Smuggler(ServiceBase):
    """Relates a malformed URI behind the SDK's back, as a buggy or hostile service could: the
    dispatcher must refuse it where it is analysed, not crash."""

    def execute(self, request) -> None:
        data = b"not-a-uri"
        request.related.append(Related(FileRef(hashlib.sha256(data).hexdigest(), len(data), data.decode(), data,
                                               SampleKind.URI), "", Relation.RETRIEVED_BY))
        request.result = Result([ResultSection("smuggled", heuristic=1)])


def relater(name: str = "relater", kinds: list[str] = SAMPLE_KINDS, **links: list[list[str]]) -> Relater:
    """A Relater taking `kinds`; `links` maps a sample's value (or file name) to what it relates.
    Values with dots or slashes cannot be keyword names, so pass them as `**{"a.example": [...]}`."""
    return make(Relater, name, kinds=kinds, config={"links": links})
