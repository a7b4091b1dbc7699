"""One example of every wire message, every field set to something other than its default.

The golden messages (tests/golden/<version>/) are these, encoded; docs/wire.md shows them as
JSON. Fixed values only (no clocks, no random ids), so encoding them again gives the same bytes
for as long as the contract has not changed.
"""

from __future__ import annotations

import hashlib

import msgspec

from schemas.messages import (
    CachedStage,
    ChildSubmission,
    DeadLetter,
    ErrorType,
    ExtractedFile,
    FileNode,
    FileRef,
    HeuristicHit,
    NodeReport,
    ObjectKind,
    Relation,
    ResultView,
    RuleSet,
    RulesAnnouncement,
    SampleKind,
    Section,
    ServiceError,
    ServiceRecord,
    ServiceResult,
    Stage,
    StoredObject,
    Submission,
    SubmissionParams,
    Summary,
    Tag,
    Task,
)

SID = "3f0c9a2b7d1e4c5f8a6b0d2e1f3a4b5c"
AT = 1767225600.0  # 2026-01-01T00:00:00Z
HELLO = b"hello, sluice\n"
HELLO_SHA = hashlib.sha256(HELLO).hexdigest()
URI = "https://example.com/dl/payload.exe"
URI_SHA = hashlib.sha256(URI.encode()).hexdigest()
CHILD_SHA = "a3f5b1c2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081"  # a stored file's name only
REPLY = "sluice.reply.d0c1a2b3c4d5"

FILE = FileRef(HELLO_SHA, len(HELLO), "hello.txt", HELLO, SampleKind.FILE)
URI_REF = FileRef(URI_SHA, len(URI), URI, URI.encode(), SampleKind.URI)
STORED = FileRef(CHILD_SHA, 200_000, "payload.exe")  # too big to travel inline: in the file store
PARAMS = SubmissionParams(
    deep_scan=True, ignore_cache=True, max_depth=3, max_files=50, max_children=20, services=["pe", "yara"],
    exclude=["safelist"], priority=500, service_params={"extract": {"password": "infected"}},
    temp_data={"passwords": ["infected"]})
HIT = HeuristicHit(3, "Packed executable", 500, ["T1027.002"], ["upx"])
SECTION = Section("Packer", "UPX 3.96", "TEXT", HIT, [Tag("file.pe.sections.name", "UPX0")], 1)
ERROR = ServiceError("yara", ErrorType.TIMEOUT, "no result within 65 s")
OBJECT = StoredObject("strings.txt", ObjectKind.SUPPLEMENTARY, STORED, "every printable string")
EXTRACTED = ExtractedFile(STORED, "unpacked from hello.zip", Relation.DROPPED_BY)
VIEW = ResultView("pe", 500, [SECTION], True, [OBJECT], {"imports": 12, "packed": True})
CHILD_NODE = FileNode(CHILD_SHA, "payload.exe", "executable/windows/pe32", 200_000, 1, 500, Relation.DROPPED_BY,
                      SampleKind.FILE, True, True, [VIEW], [ERROR], [])
ROOT_NODE = FileNode(HELLO_SHA, "hello.txt", "text/plain", len(HELLO), 0, 500, Relation.ROOT, SampleKind.FILE,
                     False, False, [VIEW], [ERROR], [CHILD_NODE])
RESULT = ServiceResult(
    corr="c0ffee01", service="pe", service_version="4.5.0", tool_version="pefile 2024.8.26", sections=[SECTION],
    score=500, drop=True, extracted=[EXTRACTED], objects=[OBJECT], metadata={"imports": 12, "packed": True},
    temp_data={"passwords": ["infected", "secret"]}, error=ERROR, elapsed=0.25, cached=True)

EXAMPLES: dict[str, msgspec.Struct] = {
    "Submission": Submission(SID, [FILE, URI_REF], PARAMS, {"case": "INC-42"}, AT),
    "ChildSubmission": ChildSubmission(SID, 2, STORED, HELLO_SHA, 1, Relation.DROPPED_BY, PARAMS, REPLY + ".node",
                                       [HELLO_SHA]),
    "Task": Task("c0ffee01", SID, STORED, "executable/windows/pe32", Stage.CORE, ["pe", "yara"], AT + 60,
                 REPLY + ".result", 1, True, 20, {"pe": {"verbose": True}}, {"passwords": ["infected"]}),
    "ServiceResult": RESULT,
    "NodeReport": NodeReport(SID, 2, HELLO_SHA, CHILD_NODE, [EXTRACTED], {"passwords": ["infected"]}),
    "Summary": Summary(SID, 500, "suspicious", [ROOT_NODE], {"file.pe.sections.name": ["UPX0"]},
                       ["pe.3: Packed executable"], 1, 2, 1, {"case": "INC-42"}, AT, AT + 2.5),
    "DeadLetter": DeadLetter("sluice.submit.root", "not a valid Submission: Expected `object`, got `int`",
                             b"\x2a", AT, 1, 1, "1.0"),
    "ServiceRecord": ServiceRecord(
        "pe", "4.5.0", Stage.CORE, "executable/windows/.*", "executable/windows/dotnet", 60.0, "svc-pe",
        "pefile 2024.8.26", "9f86d081", True, False, [SampleKind.FILE, SampleKind.URI], True, AT, 2),
    "CachedStage": CachedStage({"pe.9f86d081": RESULT}),
    "RuleSet": RuleSet("yara", "sha256:0123abcd", {"example.yar": b"rule example { condition: false }\n"},
                       ["https://example.com/rules.zip"], AT),
    "RulesAnnouncement": RulesAnnouncement("sha256:0123abcd", STORED, ["example.yar"], AT),
}
