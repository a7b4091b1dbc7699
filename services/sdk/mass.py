"""MASS's analysis-client API on Sluice: a `FileAnalysisClient` written as in the MASS tutorial
runs as a Sluice service with only its import lines changed.

    from services.sdk.mass import FileAnalysisClient

    class SizeAnalysisInstance(FileAnalysisClient):
        def do_analysis(self, analysis_request):
            with self.temporary_sample_file() as file:
                self.submit_report(analysis_request["url"], additional_metadata={"file size": os.path.getsize(file)})

What MASS polls its server for, Sluice delivers as a task; the report goes into the result
(metadata in the summary, report objects stored once in NATS and referenced).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from services.sdk.base import ServiceBase
from services.sdk.request import Request

_current: contextvars.ContextVar[Request] = contextvars.ContextVar("mass_request")


def _request() -> Request:
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("only usable while do_analysis runs") from None


@contextlib.contextmanager
def temporary_sample_file() -> Iterator[str]:
    """The tutorial imports this too: the current sample's path, inside `do_analysis`."""
    yield _request().file_path


class FileAnalysisClient(ServiceBase):
    """Subclass and write `do_analysis(analysis_request)`, as for MASS."""

    def do_analysis(self, analysis_request: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement do_analysis(analysis_request)")

    def execute(self, request: Request) -> None:
        # Each task runs in its own context (worker thread), so concurrent tasks never share this.
        token = _current.set(request)
        try:
            self.do_analysis({"url": request.sid, "sample": self.sample_dict, "parameters": request.temp_submission_data})
        finally:
            _current.reset(token)

    @property
    def request(self) -> Request:
        """The task's whole `Request`, for what MASS has no word for (sections, scores, children)."""
        return _request()

    @property
    def sample_dict(self) -> dict[str, Any]:
        """The sample's meta-information, as MASS gives it."""
        r = _request()
        return {"id": r.sha256, "file_name": r.file_name, "file_size": r.file_size, "mime_type": r.file_type,
                "md5sum": r.md5, "sha1sum": r.sha1, "sha256sum": r.sha256, "sid": r.sid}

    def temporary_sample_file(self) -> contextlib.AbstractContextManager[str]:
        """The sample on disk (a path, not a file object); removed when the task ends."""
        return temporary_sample_file()

    def submit_report(self, url: str | None = None, additional_metadata: dict[str, Any] | None = None,
                      json_report_objects: dict[str, Any] | None = None,
                      raw_report_objects: dict[str, bytes] | None = None) -> None:
        """`url` is accepted for MASS compatibility; the report goes to the task being analysed."""
        _request().submit_report(additional_metadata, json_report_objects, raw_report_objects)
