"""The parts of Assemblyline 4.7's SANDBOX section body: a dynamic-analysis run as data.

Each item is a plain dataclass whose fields are the keys AL4 writes, so `as_primitives()` is the
same JSON that AL4's web UI reads and that our terminal and web front render.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class _Primitive:
    def as_primitives(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class SandboxMachineMetadata(_Primitive):
    ip: str | None = None
    hypervisor: str | None = None
    hostname: str | None = None
    platform: str | None = None
    version: str | None = None
    architecture: str | None = None


@dataclass
class SandboxAnalysisMetadata(_Primitive):
    task_id: str | None = None
    start_time: str = ""
    end_time: str | None = None
    routing: str | None = None
    window_size: str | None = None


@dataclass
class SandboxProcessItem(_Primitive):
    image: str
    start_time: str
    ppid: int | None = None
    pid: int | None = None
    command_line: str | None = None
    end_time: str | None = None
    integrity_level: str | None = None
    image_hash: str | None = None
    original_file_name: str | None = None
    safelisted: bool | None = False
    file_count: int = 0
    registry_count: int = 0

    def __post_init__(self) -> None:
        self.image = self.image or "<unknown_image>"


@dataclass
class SandboxNetworkDNS(_Primitive):
    domain: str
    lookup_type: str
    resolved_ips: list[str] = field(default_factory=list)
    resolved_domains: list[str] = field(default_factory=list)


@dataclass
class SandboxNetworkHTTP(_Primitive):
    request_uri: str
    request_headers: dict[str, object] = field(default_factory=dict)
    request_method: str | None = None
    response_headers: dict[str, object] = field(default_factory=dict)
    request_body: str | None = None
    response_status_code: int | None = None
    response_body: str | None = None
    response_content_fileinfo: dict | None = None
    response_content_mimetype: str | None = None


@dataclass
class SandboxNetworkSMTP(_Primitive):
    mail_from: str
    mail_to: list[str]
    attachments: list[dict] = field(default_factory=list)


@dataclass
class SandboxNetflowItem(_Primitive):
    destination_ip: str | None = None
    destination_port: int | None = None
    transport_layer_protocol: str | None = None
    direction: str | None = None
    pid: int | None = None
    source_ip: str | None = None
    source_port: int | None = None
    time_observed: str | None = None
    http_details: SandboxNetworkHTTP | None = None
    dns_details: SandboxNetworkDNS | None = None
    smtp_details: SandboxNetworkSMTP | None = None
    connection_type: str | None = None

    def as_primitives(self) -> dict[str, Any]:
        """As AL4: the protocol details appear only when set."""
        return {k: v for k, v in asdict(self).items() if v is not None or not k.endswith("_details")}


@dataclass
class SandboxAttackItem(_Primitive):
    attack_id: str
    pattern: str | None = None
    categories: list[str] = field(default_factory=list)


@dataclass
class SandboxSignatureItem(_Primitive):
    name: str
    type: str  # CUCKOO, YARA, SIGMA or SURICATA
    classification: str
    attacks: list[SandboxAttackItem] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    malware_families: list[str] = field(default_factory=list)
    signature_id: str | None = None
    message: str | None = None
    pid: int | None = None
    heuristic: str | None = None


@dataclass
class SandboxHeuristicItem(_Primitive):
    heur_id: str
    score: int
    name: str
    tags: dict[str, list[Any]] = field(default_factory=dict)
