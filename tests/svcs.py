"""Small services for the mesh tests, each built from a manifest written in code."""

from __future__ import annotations

import time

import anyio

from services.sdk import RecoverableError, Result, ResultSection, ServiceBase
from services.sdk.manifest import parse_manifest


def make(cls: type[ServiceBase], name: str, **fields) -> ServiceBase:
    raw = {"name": name, "version": "1.0", "heuristics": [{"heur_id": 1, "name": f"{name} hit", "score": 100}], **fields}
    return cls(parse_manifest(raw, f"test service {name}"))


class Echo(ServiceBase):
    """Reports the file's type and size; counts its executions."""

    def __init__(self, manifest) -> None:
        super().__init__(manifest)
        self.executed: list[str] = []

    def execute(self, request) -> None:
        self.executed.append(request.sha256)
        section = ResultSection(f"{request.file_type}, {request.file_size} bytes", heuristic=1)
        section.add_tag("file.name.extracted", request.file_name)
        request.result = Result([section])


class Slow(Echo):
    """Echo, after `seconds` (config) of work: a queue of tasks builds up behind it."""

    def execute(self, request) -> None:
        time.sleep(self.config.get("seconds", 0.3))
        super().execute(request)


class Raiser(ServiceBase):
    def execute(self, request) -> None:
        raise ValueError("this service always fails")


class Flaky(ServiceBase):
    """Fails recoverably on the first `failures` calls, then works."""

    def __init__(self, manifest) -> None:
        super().__init__(manifest)
        self.calls = 0

    def execute(self, request) -> None:
        self.calls += 1
        if self.calls <= self.config.get("failures", 1):
            raise RecoverableError("back end busy")
        request.result = Result([ResultSection("worked", heuristic=1)])


class Hanger(ServiceBase):
    """Never finishes: the runner's timeout must end each attempt."""

    def __init__(self, manifest) -> None:
        super().__init__(manifest)
        self.calls = 0

    async def execute(self, request) -> None:
        self.calls += 1
        await anyio.sleep_forever()


class Dropper(ServiceBase):
    def execute(self, request) -> None:
        request.drop()
        request.result = Result([ResultSection("dropped", heuristic=1)])


class Gated(ServiceBase):
    """Blocks each call until `release` is set; `entered` tells a test the task has arrived."""

    def __init__(self, manifest) -> None:
        super().__init__(manifest)
        self.entered = anyio.Event()
        self.release = anyio.Event()
        self.calls = 0

    async def execute(self, request) -> None:
        self.calls += 1
        self.entered.set()
        await self.release.wait()
        request.result = Result([ResultSection("released", heuristic=1)])
