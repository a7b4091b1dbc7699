"""The fault suite's service: slow, hanging, crashing or dying on demand, chosen by its config."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from services.sdk import Result, ResultSection, ServiceBase


class Chaos(ServiceBase):
    def execute(self, request) -> None:
        marker_dir = self.config.get("marker_dir")
        if marker_dir:  # which process holds which file: what a test kills or freezes
            Path(marker_dir, f"{os.getpid()}-{request.sha256}").touch()
        if re.fullmatch(self.config.get("die_type") or "(?!)", request.file_type):
            os._exit(70)  # the whole process, at once: as a native parser's segfault would
        crash_type = self.config.get("crash_type")
        if crash_type and re.fullmatch(crash_type, request.file_type):
            raise RuntimeError(f"chaos crashes on every {request.file_type} file")
        hang_prefix = self.config.get("hang_prefix")
        if hang_prefix and request.file_contents.startswith(hang_prefix.encode()):
            threading.Event().wait()  # forever: the thread never returns, as a stuck library call
        time.sleep(float(self.config.get("delay", 0)))
        request.result = Result([ResultSection(f"chaos saw {request.file_type}", heuristic=1)])
