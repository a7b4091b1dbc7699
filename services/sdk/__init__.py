"""What a service author imports: subclass `ServiceBase`, override `execute(request)`.

    from services.sdk import ServiceBase, Result, ResultSection

    class Hello(ServiceBase):
        def execute(self, request):
            section = ResultSection("Hello")
            section.add_line(f"{request.file_name} is {request.file_type}")
            result = Result()
            result.add_section(section)
            request.result = result

Assemblyline's module paths work too (`services.sdk.base`, `services.sdk.result`,
`services.sdk.request`), so a port changes `assemblyline_v4_service.common` to `services.sdk`
and nothing else. Assemblyline 3's names are in `services.sdk.al3`, MASS's in
`services.sdk.mass`, AL4's updater in `services.sdk.al4_updater`.
"""

from services.sdk.base import RecoverableError, ServiceBase
from services.sdk.manifest import HeuristicSpec, Manifest, ManifestError, load_manifest
from services.sdk.process import ToolOutput, ToolTimeout, run_tool
from services.sdk.request import MaxExtractedExceeded, Request
from services.sdk.result import (
    BODY_FORMAT,
    PROMOTE_TO,
    Heuristic,
    ProcessItem,
    Result,
    ResultGraphSection,
    ResultImageSection,
    ResultJSONSection,
    ResultKeyValueSection,
    ResultMemoryDumpSection,
    ResultMultiSection,
    ResultOrderedKeyValueSection,
    ResultProcessTreeSection,
    ResultSandboxSection,
    ResultSection,
    ResultTableSection,
    ResultTextSection,
    ResultTimelineSection,
    ResultURLSection,
    TableRow,
)

__all__ = [
    "BODY_FORMAT",
    "PROMOTE_TO",
    "Heuristic",
    "HeuristicSpec",
    "Manifest",
    "ManifestError",
    "MaxExtractedExceeded",
    "ProcessItem",
    "RecoverableError",
    "Request",
    "Result",
    "ResultGraphSection",
    "ResultImageSection",
    "ResultJSONSection",
    "ResultKeyValueSection",
    "ResultMemoryDumpSection",
    "ResultMultiSection",
    "ResultOrderedKeyValueSection",
    "ResultProcessTreeSection",
    "ResultSandboxSection",
    "ResultSection",
    "ResultTableSection",
    "ResultTextSection",
    "ResultTimelineSection",
    "ResultURLSection",
    "ServiceBase",
    "TableRow",
    "ToolOutput",
    "ToolTimeout",
    "load_manifest",
    "run_tool",
]
