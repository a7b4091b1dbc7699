"""What a service author imports: subclass `ServiceBase`, override `execute(request)`.

    from services.sdk import ServiceBase, Result, ResultSection

    class Hello(ServiceBase):
        def execute(self, request):
            section = ResultSection("Hello")
            section.add_line(f"{request.file_name} is {request.file_type}")
            result = Result()
            result.add_section(section)
            request.result = result
"""

from services.sdk.base import RecoverableError, ServiceBase
from services.sdk.manifest import Heuristic, Manifest, ManifestError, load_manifest
from services.sdk.request import Request
from services.sdk.result import BODY_FORMAT, Result, ResultSection

__all__ = [
    "BODY_FORMAT",
    "Heuristic",
    "Manifest",
    "ManifestError",
    "RecoverableError",
    "Request",
    "Result",
    "ResultSection",
    "ServiceBase",
    "load_manifest",
]
