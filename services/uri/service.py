"""URI: take a URI sample apart, score what is deceptive about it, and relate its host.

One section with the parts (password redacted everywhere, tags included), a table of the query
parameters, and one section per heuristic fired. The host becomes a child sample: a domain
(`resolved-by`) or an IP address (`contacted-by`), the decoded address when the host is an
IPv4 address in disguise. A `data:` URI's content is extracted as a file.
"""

from __future__ import annotations

from urllib.parse import unquote

import msgspec

from schemas.messages import SampleKind
from schemas.samples import SampleError, canonical
from schemas.tags import tag_problem
from services.sdk import Request, Result, ResultKeyValueSection, ResultSection, ResultTableSection, ServiceBase
from services.sdk.result import Heuristic
from services.uri.findings import Finding, Policy, findings
from services.uri.parse import UriFacts, data_payload, parse_uri

SHOWN_SCRIPT = 500  # characters of a javascript: URI's code shown


class Display(msgspec.Struct, frozen=True):
    max_query_params: int = 100  # rows in the query table; the rest are counted


class Uri(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.policy = self.config_as(Policy)
        self.display = self.config_as(Display)

    def execute(self, request: Request) -> None:
        request.result = result = Result()
        try:
            facts = parse_uri(request.sample)
        except ValueError as exc:  # the sample check refuses these first; a file of another kind may not
            result.add_section(ResultSection("Not a URI", f"{request.sample[:200]!r}: {exc}"))
            return
        host_sample = _host_sample(facts)
        result.add_section(self._parts(facts, host_sample))
        if facts.parts.query:
            result.add_section(self._query(facts))
        for found in findings(facts, self.policy):
            result.add_section(_section(found))
        if facts.scheme == "javascript":
            code = unquote(facts.uri.partition(":")[2])
            result.add_section(ResultSection("Script code", code[:SHOWN_SCRIPT] + ("…" if len(code) > SHOWN_SCRIPT else "")))
        if facts.scheme == "data":
            self._extract_data(facts, request, result)
        if host_sample:
            request.add_related(*host_sample, description=f"host of {facts.redacted[:200]}")

    def _parts(self, f: UriFacts, host_sample: tuple[SampleKind, str] | None) -> ResultKeyValueSection:
        section = ResultKeyValueSection("URI")
        redacted = f.redacted
        section.set_item("uri", redacted)
        section.set_item("scheme", f.scheme)
        _tag(section, "network.static.uri", redacted)
        if f.user is not None:
            section.set_item("user", f.user)
            section.set_item("password", "present (redacted)" if f.has_password else "none")
        if f.host is not None:
            section.set_item("host", f.host.host)
            if f.host.display:
                section.set_item("host (Unicode)", f.host.display)
            if f.host.ip is not None:
                section.set_item("ip", str(f.host.ip))
            section.set_item("port", f.port if f.port is not None else f"{f.default_port} (default)" if f.default_port else "none")
            if f.port is not None:
                section.add_tag("network.port", f.port)
        if host_sample:
            kind, value = host_sample
            section.add_tag("network.static.ip" if kind is SampleKind.IP else "network.static.domain", value)
        for name in ("path", "query", "fragment"):
            if value := getattr(f.parts, name):
                section.set_item(name, value)
        if f.host is not None:
            _tag(section, "network.static.uri_path", f.parts.path)
        return section

    def _query(self, f: UriFacts) -> ResultSection:
        params = f.query_params
        limit = self.display.max_query_params
        table = ResultTableSection(f"Query parameters ({len(params)})")
        for name, value in params[:limit]:
            table.add_row({"name": name, "value": value})
        if len(params) > limit:
            note = ResultSection("Query parameters capped", f"{limit} of {len(params)} parameters shown")
            table.add_subsection(note)
        return table

    @staticmethod
    def _extract_data(f: UriFacts, request: Request, result: Result) -> None:
        payload = data_payload(f)
        if payload is None:
            result.add_section(ResultSection("Data URI", "the content does not decode (no comma, or broken base64)"))
            return
        facts = ResultKeyValueSection("Data URI", {"media type": payload.media_type, "size": len(payload.data)})
        result.add_section(facts)
        request.add_extracted(payload.data, "data-uri-content", f"content of a data: URI ({payload.media_type})")


def _host_sample(f: UriFacts) -> tuple[SampleKind, str] | None:
    """The host as a sample: the address (decoded, if disguised) or the canonical domain; None
    when there is no host or it is not a valid name."""
    if f.host is None:
        return None
    kind = SampleKind.IP if f.host.ip is not None else SampleKind.DOMAIN
    try:
        return kind, canonical(kind, str(f.host.ip) if f.host.ip is not None else f.host.host)
    except SampleError:
        return None


def _tag(section: ResultSection, name: str, value: str) -> None:
    """Tag only what the taxonomy takes (`foo:` is a URI, but not one Assemblyline tags; a
    `data:` URI may be longer than a tag), so the result carries no warning for it."""
    if tag_problem(name, value) is None:
        section.add_tag(name, value)


def _section(found: Finding) -> ResultSection:
    heuristic = Heuristic(found.heur_id, attack_id=found.attack_id, signature=found.signature)
    return ResultSection(found.title, "\n".join(found.lines), heuristic=heuristic)
