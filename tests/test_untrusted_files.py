"""What a service does with a submitted file on disk: it stays inside the task's own work
directory under a name Sluice chooses, readable by the service's user only, never executable.
(Archive members, the other way a name could escape, are the extract service's tests.)"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from schemas.messages import FileRef, Task
from services.sdk.request import Request
from svcs import Echo, make

SCRIPT = b"#!/bin/sh\necho owned > /tmp/owned\n"


def test_a_hostile_name_never_becomes_a_path_and_the_file_is_not_executable(tmp_path: Path) -> None:
    work_root = tmp_path / "work"
    work_root.mkdir()
    hostile = "../../../etc/cron.d/evil.sh"
    task = Task("corr", "sid", FileRef("0" * 64, len(SCRIPT), hostile), "code/shell", "CORE", ["echo"], 9e12, "")
    request = Request(task, lambda: SCRIPT, make(Echo, "echo").manifest, work_root, 10)
    try:
        path = Path(request.file_path)
        assert path.parent.parent == work_root  # <work root>/<task dir>/<file>
        assert path.name.startswith("sample-") and "evil" not in path.name
        assert path.read_bytes() == SCRIPT
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode & 0o111 == 0, oct(mode)  # no execute bit for anyone
        assert mode & 0o077 == 0, oct(mode)  # and nobody else reads it
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        assert request.file_name == hostile  # the name is data for the report, nothing more
    finally:
        request.cleanup()
    assert list(work_root.iterdir()) == []
