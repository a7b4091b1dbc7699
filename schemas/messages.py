"""Every message that crosses NATS, as a msgspec Struct.

Encoded as MessagePack by `bus.codec`. Field names are the contract between the
dispatcher, the services and clients, so they change only with a version bump.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator

import msgspec

from schemas.limits import Limits


SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a submission id is one subject token


class Stage(str, enum.Enum):
    """The order a file's services run in; a stage starts when the one before it has finished."""

    FILTER = "FILTER"
    EXTRACT = "EXTRACT"
    CORE = "CORE"
    SECONDARY = "SECONDARY"
    POST = "POST"


STAGES: tuple[Stage, ...] = tuple(Stage)


class SampleKind(enum.StrEnum):
    """What a sample is. Non-file samples carry their canonical value as content (schemas.samples)."""

    FILE = "file"
    URI = "uri"
    DOMAIN = "domain"
    IP = "ip"


class Relation(enum.StrEnum):
    """How a child sample relates to the sample it was found in (MASS's relations)."""

    ROOT = "root"  # submitted, not found
    DROPPED_BY = "dropped-by"  # a file extracted from, or dropped by, its parent
    RESOLVED_BY = "resolved-by"  # a domain its parent resolves
    CONTACTED_BY = "contacted-by"  # an IP address its parent contacts
    RETRIEVED_BY = "retrieved-by"  # a URI its parent retrieves


class FileRef(msgspec.Struct, frozen=True, omit_defaults=True):
    """A sample known by its sha256. `data` carries small files (and every URI, domain and IP)
    inline so a service need not fetch them."""

    sha256: str
    size: int
    name: str = ""
    data: bytes | None = None
    kind: SampleKind = SampleKind.FILE
    # Where its writer uploaded the bytes (`<writer>.<id>`, bus.blobs): only the dispatcher makes
    # them the object named by the sha256, once it has checked them. Empty: already stored, or inline.
    upload: str = ""
    # Set by whoever stored the bytes when the store did not have them before: no analysis can
    # have cached results for them, so the dispatcher skips the cache read on a first delivery.
    # A hint that can only cost a re-run (a false one), never change a verdict.
    fresh: bool = False


class SubmissionParams(msgspec.Struct, omit_defaults=True):
    deep_scan: bool = False
    ignore_cache: bool = False
    max_depth: int = Limits.max_depth
    max_files: int = Limits.max_files
    max_children: int = Limits.max_children
    services: list[str] = []  # empty: every service that accepts the type
    exclude: list[str] = []
    priority: int = 1000
    service_params: dict[str, dict[str, object]] = {}
    # Assemblyline's temporary submission data: what the submitter starts with (e.g. passwords),
    # plus what services add on the way; each file's tasks see what its ancestors' services added.
    temp_data: dict[str, object] = {}


class Submission(msgspec.Struct, omit_defaults=True):
    """What a user publishes: one or more root files analysed as one verdict tree."""

    sid: str
    files: list[FileRef]
    params: SubmissionParams = msgspec.field(default_factory=SubmissionParams)
    metadata: dict[str, str] = {}
    submitted_at: float = 0.0


class ChildSubmission(msgspec.Struct, omit_defaults=True):
    """An extracted file republished for analysis, linked to its tree.

    `attempt` is the root's delivery count: a dispatcher that resumes a tree after a crash
    starts a new attempt, and reports from older attempts are ignored.
    """

    sid: str
    attempt: int
    file: FileRef
    parent_sha256: str
    depth: int
    relation: Relation
    params: SubmissionParams
    reply_to: str
    ancestry: list[str] = []


class Task(msgspec.Struct, omit_defaults=True):
    """One file for one stage, published on `task.<STAGE>.<type tokens>`.

    Every service whose filter matches the subject sees it; only the `targets` run it.
    """

    corr: str
    sid: str
    file: FileRef
    file_type: str
    stage: Stage
    targets: list[str]
    deadline: float  # epoch seconds; a service skips a task whose deadline has passed
    reply_to: str
    depth: int = 0
    deep_scan: bool = False
    max_extracted: int = Limits.max_children
    service_params: dict[str, dict[str, object]] = {}
    temp_data: dict[str, object] = {}


class Tag(msgspec.Struct, frozen=True):
    name: str
    value: str


class HeuristicHit(msgspec.Struct, omit_defaults=True):
    heur_id: int
    name: str
    score: int
    attack_ids: list[str] = []
    signatures: list[str] = []


class Section(msgspec.Struct, omit_defaults=True):
    title: str
    body: str = ""
    body_format: str = "TEXT"
    heuristic: HeuristicHit | None = None
    tags: list[Tag] = []
    depth: int = 0  # nesting level: subsections are flattened in order with depth + 1
    # Assemblyline 4's section options, carried to the summary: how to show the body (a table's
    # column_order), whether to show it folded, its classification marking, where AL4 would
    # promote it (SCREENSHOT, ENTROPY, URI_PARAMS), and whether a safelisted tag zeroes its score.
    body_config: dict[str, object] = {}
    auto_collapse: bool = False
    classification: str = ""
    promote_to: str = ""
    zeroize_on_tag_safe: bool = False


class ExtractedFile(msgspec.Struct, omit_defaults=True):
    file: FileRef
    description: str = ""
    relation: Relation = Relation.DROPPED_BY


class ObjectKind(str, enum.Enum):
    """What a stored object is: a file for an analyst, or a MASS-style report object."""

    SUPPLEMENTARY = "supplementary"
    JSON_REPORT = "json"
    RAW_REPORT = "raw"


class StoredObject(msgspec.Struct, omit_defaults=True):
    """A blob a service produced that is not analysed further; the summary keeps only this reference."""

    name: str
    kind: ObjectKind
    file: FileRef
    description: str = ""


class ErrorType(str, enum.Enum):
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    RECOVERABLE = "recoverable"
    MAX_DEPTH = "max_depth"
    MAX_FILES = "max_files"
    MAX_CHILDREN = "max_children"
    SERVICE_DOWN = "service_down"
    UNREACHABLE = "unreachable"
    BAD_INPUT = "bad_input"


class ServiceError(msgspec.Struct, omit_defaults=True):
    service: str
    type: ErrorType
    message: str
    # The operator's limits overrode what a submitter asked or a service claimed (type bad_input:
    # a flag rather than a new ErrorType, so readers of wire 1.0 still decode the summary).
    policy: bool = False


def policy_error(service: str, message: str) -> ServiceError:
    """An operator's override, as the tree records it."""
    return ServiceError(service, ErrorType.BAD_INPUT, message, policy=True)


class ServiceResult(msgspec.Struct, omit_defaults=True):
    """A service's answer to one Task, sent to the task's `reply_to`."""

    corr: str
    service: str
    service_version: str
    tool_version: str = ""
    sections: list[Section] = []
    score: int = 0
    drop: bool = False
    extracted: list[ExtractedFile] = []
    objects: list[StoredObject] = []
    metadata: dict[str, str | int | float | bool] = {}
    temp_data: dict[str, object] = {}  # keys the service set or changed in temp_submission_data
    error: ServiceError | None = None
    elapsed: float = 0.0
    cached: bool = False
    partial: bool = False  # the service said its result is incomplete (AL4 request.partial()): never cached
    context: str = ""  # one line the service set with request.set_service_context (e.g. the engine's version)


class ResultView(msgspec.Struct, omit_defaults=True):
    """A service's result as the summary shows it."""

    service: str
    score: int
    sections: list[Section] = []
    cached: bool = False
    objects: list[StoredObject] = []
    metadata: dict[str, str | int | float | bool] = {}
    partial: bool = False
    context: str = ""


class FileNode(msgspec.Struct, omit_defaults=True):
    """One sample (a file, or a URI, domain or IP) in a verdict tree."""

    sha256: str
    name: str
    type: str
    size: int
    depth: int
    score: int = 0
    relation: Relation = Relation.ROOT
    kind: SampleKind = SampleKind.FILE
    dropped: bool = False
    duplicate: bool = False  # already analysed elsewhere in this tree
    results: list[ResultView] = []
    errors: list[ServiceError] = []
    children: list[FileNode] = []


def walk(nodes: list[FileNode]) -> Iterator[FileNode]:
    """Every node of a verdict tree, parents before their children."""
    for node in nodes:
        yield node
        yield from walk(node.children)


class NodeReport(msgspec.Struct, omit_defaults=True):
    """A child's analysis, sent back to the dispatcher that owns its tree."""

    sid: str
    attempt: int
    parent_sha256: str
    node: FileNode
    extracted: list[ExtractedFile] = []
    temp_data: dict[str, object] = {}  # the child's temp data after its services, for its own children


class Summary(msgspec.Struct, omit_defaults=True):
    """The verdict tree of one submission, published on `summary.<sid>`."""

    sid: str
    score: int
    verdict: str
    files: list[FileNode]
    tags: dict[str, list[str]] = {}
    heuristics: list[str] = []
    errors: int = 0
    file_count: int = 0
    cached_results: int = 0
    metadata: dict[str, str] = {}
    submitted_at: float = 0.0
    completed_at: float = 0.0


class ServiceRecord(msgspec.Struct, omit_defaults=True):
    """A live service, as its instances announce it in the registry (KV)."""

    name: str
    version: str
    stage: Stage
    accepts: str
    rejects: str
    timeout: float
    consumer: str
    tool_version: str = ""
    config_hash: str = ""
    disable_cache: bool = False
    enabled: bool = True  # False: runs only for submissions that select it by name
    kinds: list[SampleKind] = msgspec.field(default_factory=lambda: [SampleKind.FILE])  # the kinds of sample it takes (its accepts is matched within them)
    uses_temp_data: bool = False  # its results depend on temp data, so the cache key includes it
    heartbeat: float = 0.0
    instances: int = 1
    working: int = 0  # tasks the instance was running at this heartbeat (its consumer may not count them: no acks)


class ApprovedService(msgspec.Struct, omit_defaults=True):
    """What the operator allows a service to be, in the approvals KV under its name (written by
    admin only: `sluice service approve`, `sluice provision`). The dispatcher plans from this, not
    from what the service's heartbeat says; a result outside the score range is clamped, and
    `drop` is honoured only when `may_drop`."""

    name: str
    stage: Stage
    accepts: str
    rejects: str
    timeout: float
    score_min: int
    score_max: int
    may_drop: bool = False
    kinds: list[SampleKind] = msgspec.field(default_factory=lambda: [SampleKind.FILE])
    enabled: bool = True
    approved_at: float = 0.0


class DeadLetter(msgspec.Struct):
    """A message Sluice could not use, kept with the reason for an operator."""

    subject: str
    reason: str
    data: bytes  # the first MiB of the message; `size` says whether that is all of it
    at: float
    size: int = -1  # the message's length (-1: not recorded, letters from before it was)
    replays: int = 0  # how often an operator has replayed this message (`sluice dlq replay`)
    wire: str = ""  # the message's Sluice-Wire header ("": it had none), which a replay sends again


class MaxDeliveriesAdvisory(msgspec.Struct):
    """nats-server's notice (JSON, on `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`)
    that a consumer delivered a message as often as it may, never acknowledged; the fields we read."""

    stream: str
    consumer: str
    stream_seq: int
    deliveries: int


class RuleSet(msgspec.Struct, omit_defaults=True):
    """A service's rule files as the updater fetched them, stored once in the rule-set store."""

    service: str
    version: str  # the rules' digest, which becomes the service's tool version
    files: dict[str, bytes]  # file name (a plain name, no folders) -> contents
    sources: list[str] = []
    created_at: float = 0.0


class RulesAnnouncement(msgspec.Struct, omit_defaults=True):
    """The current rule set of a service, in the rules KV under the service's name."""

    version: str
    ref: FileRef  # the encoded RuleSet in the rule-set store
    files: list[str] = []
    created_at: float = 0.0


class CachedStage(msgspec.Struct, omit_defaults=True):
    """One file's cached results for one stage, in the cache KV under `<sha256>.<stage>`: one read
    and one write per stage, not one per service. Keyed by each service's cache key (service,
    versions, config and parameters), so a result is used only where it still applies."""

    results: dict[str, ServiceResult] = {}
