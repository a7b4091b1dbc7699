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
    ApprovedService,
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

FILE = FileRef(sha256=HELLO_SHA, size=len(HELLO), name="hello.txt", data=HELLO, kind=SampleKind.FILE)
URI_REF = FileRef(sha256=URI_SHA, size=len(URI), name=URI, data=URI.encode(), kind=SampleKind.URI)
STORED = FileRef(sha256=CHILD_SHA, size=200_000, name="payload.exe")  # too big to travel inline: in the file store
PARAMS = SubmissionParams(
    deep_scan=True, ignore_cache=True, max_depth=3, max_files=50, max_children=20, services=["pe", "yara"],
    exclude=["safelist"], priority=500, service_params={"extract": {"password": "infected"}},
    temp_data={"passwords": ["infected"]})
HIT = HeuristicHit(heur_id=3, name="Packed executable", score=500, attack_ids=["T1027.002"], signatures=["upx"])
SECTION = Section(title="Packer", body="UPX 3.96", body_format="TEXT", heuristic=HIT,
                  tags=[Tag(name="file.pe.sections.name", value="UPX0")], depth=1)
ERROR = ServiceError(service="yara", type=ErrorType.TIMEOUT, message="no result within 65 s")
OBJECT = StoredObject(name="strings.txt", kind=ObjectKind.SUPPLEMENTARY, file=STORED, description="every printable string")
EXTRACTED = ExtractedFile(file=STORED, description="unpacked from hello.zip", relation=Relation.DROPPED_BY)
VIEW = ResultView(service="pe", score=500, sections=[SECTION], cached=True, objects=[OBJECT],
                  metadata={"imports": 12, "packed": True})
CHILD_NODE = FileNode(sha256=CHILD_SHA, name="payload.exe", type="executable/windows/pe32", size=200_000, depth=1,
                      score=500, relation=Relation.DROPPED_BY, kind=SampleKind.FILE, dropped=True, duplicate=True,
                      results=[VIEW], errors=[ERROR], children=[])
ROOT_NODE = FileNode(sha256=HELLO_SHA, name="hello.txt", type="text/plain", size=len(HELLO), depth=0, score=500,
                     relation=Relation.ROOT, kind=SampleKind.FILE, dropped=False, duplicate=False, results=[VIEW],
                     errors=[ERROR], children=[CHILD_NODE])
RESULT = ServiceResult(
    corr="c0ffee01", service="pe", service_version="4.5.0", tool_version="pefile 2024.8.26", sections=[SECTION],
    score=500, drop=True, extracted=[EXTRACTED], objects=[OBJECT], metadata={"imports": 12, "packed": True},
    temp_data={"passwords": ["infected", "secret"]}, error=ERROR, elapsed=0.25, cached=True)

# Keyword arguments throughout: a field added in the middle of a Struct must not shift the values.
EXAMPLES: dict[str, msgspec.Struct] = {
    "Submission": Submission(sid=SID, files=[FILE, URI_REF], params=PARAMS, metadata={"case": "INC-42"},
                             submitted_at=AT),
    "ChildSubmission": ChildSubmission(
        sid=SID, attempt=2, file=STORED, parent_sha256=HELLO_SHA, depth=1, relation=Relation.DROPPED_BY,
        params=PARAMS, reply_to=REPLY + ".node", ancestry=[HELLO_SHA]),
    "Task": Task(
        corr="c0ffee01", sid=SID, file=STORED, file_type="executable/windows/pe32", stage=Stage.CORE,
        targets=["pe", "yara"], deadline=AT + 60, reply_to=REPLY + ".result", depth=1, deep_scan=True,
        max_extracted=20, service_params={"pe": {"verbose": True}}, temp_data={"passwords": ["infected"]}),
    "ServiceResult": RESULT,
    "NodeReport": NodeReport(sid=SID, attempt=2, parent_sha256=HELLO_SHA, node=CHILD_NODE, extracted=[EXTRACTED],
                             temp_data={"passwords": ["infected"]}),
    "Summary": Summary(
        sid=SID, score=500, verdict="suspicious", files=[ROOT_NODE], tags={"file.pe.sections.name": ["UPX0"]},
        heuristics=["pe.3: Packed executable"], errors=1, file_count=2, cached_results=1,
        metadata={"case": "INC-42"}, submitted_at=AT, completed_at=AT + 2.5),
    "DeadLetter": DeadLetter(subject="sluice.submit.root", reason="not a valid Submission: Expected `object`, got `int`",
                             data=b"\x2a", at=AT, size=1, replays=1, wire="1.0"),
    "ServiceRecord": ServiceRecord(
        name="pe", version="4.5.0", stage=Stage.CORE, accepts="executable/windows/.*",
        rejects="executable/windows/dotnet", timeout=60.0, consumer="svc-pe", tool_version="pefile 2024.8.26",
        config_hash="9f86d081", disable_cache=True, enabled=False, kinds=[SampleKind.FILE, SampleKind.URI],
        uses_temp_data=True, heartbeat=AT, instances=2),
    "ApprovedService": ApprovedService(
        name="pe", stage=Stage.CORE, accepts="executable/windows/.*", rejects="executable/windows/dotnet",
        timeout=60.0, score_min=0, score_max=12_000, may_drop=False, kinds=[SampleKind.FILE], approved_at=AT),
    "CachedStage": CachedStage(results={"pe.9f86d081": RESULT}),
    "RuleSet": RuleSet(service="yara", version="sha256:0123abcd",
                       files={"example.yar": b"rule example { condition: false }\n"},
                       sources=["https://example.com/rules.zip"], created_at=AT),
    "RulesAnnouncement": RulesAnnouncement(version="sha256:0123abcd", ref=STORED, files=["example.yar"], created_at=AT),
}
