"""A submission's verdict tree: its root files analysed here, its children anywhere, bounded.

The dispatcher that took the submission owns the tree. Children go back on the submit stream
as `ChildSubmission`s (any dispatcher may analyse them) and their node reports come back to
the owner, who alone decides which grandchildren are analysed: depth, files per tree, children
per file, and a sample already in the tree (which ends cycles). The owner holds only the root's
message while it waits; children ride another consumer, so waiting parents never hold the slots
their children need.

A sample is known by its `ref_key`: a file by its sha256, a URI, domain or IP by its kind and
sha256. So a domain and a text file holding the same name are two samples, and a URI met again
is a duplicate.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import anyio
import msgspec

from bus.codec import encode
from bus.publish import publish
from dispatcher.analysis import FileAnalysis, Mesh, analyse_file
from schemas.limits import Limits
from schemas.messages import (
    ChildSubmission,
    ErrorType,
    ExtractedFile,
    FileNode,
    FileRef,
    NodeReport,
    Relation,
    SampleKind,
    ServiceError,
    Submission,
)
from schemas.samples import node_key, ref_key, sample_type

log = logging.getLogger("sluice.dispatcher")


class Pending(NamedTuple):
    """A child sent for analysis, and the node it goes under when its report comes back."""

    child: ChildSubmission
    parent: FileNode


def _key(node: FileNode) -> str:
    return node_key(node.kind, node.sha256)


class Tree:
    def __init__(self, mesh: Mesh, submission: Submission, attempt: int, idle_timeout: float = Limits.tree_timeout) -> None:
        self.mesh = mesh
        self.sub = submission
        self.attempt = attempt
        self.idle_timeout = idle_timeout
        self.roots: list[FileNode] = []
        self.nodes: dict[str, FileNode] = {}
        self.seen: set[str] = set()
        self.pending: dict[str, Pending] = {}
        self.changed: anyio.Event | None = None  # made when children are awaited (most trees have none)
        self._reports: list[NodeReport] = []

    def _on_report(self, report: NodeReport) -> None:
        if report.attempt == self.attempt and _key(report.node) in self.pending:
            self._reports.append(report)
            if self.changed is not None:
                self.changed.set()

    async def run(self) -> list[FileNode]:
        params = self.sub.params
        self.mesh.router.watch_tree(self.sub.sid, self._on_report)
        try:
            if len(self.sub.files) == 1:  # the usual case: no task group, no task
                self.seen.add(ref_key(self.sub.files[0]))
                await self._analyse_root(self.sub.files[0], params)
            else:
                async with anyio.create_task_group() as tg:
                    for file in self.sub.files:
                        if ref_key(file) in self.seen:
                            self.roots.append(self._duplicate(file, 0, Relation.ROOT))
                            continue
                        self.seen.add(ref_key(file))
                        tg.start_soon(self._analyse_root, file, params)
            await self._collect_children()
        finally:
            self.mesh.router.unwatch_tree(self.sub.sid)
        order = {ref_key(f): i for i, f in reversed(list(enumerate(self.sub.files)))}
        return sorted(self.roots, key=lambda n: (order[_key(n)], n.duplicate))

    async def _analyse_root(self, file, params) -> None:
        analysis = await analyse_file(self.mesh, self.sub.sid, file, 0, Relation.ROOT, params, first_try=self.attempt == 1)
        self.roots.append(analysis.node)
        await self._attach(analysis)

    async def _collect_children(self) -> None:
        while self.pending:
            if not self._reports:
                self.changed = anyio.Event()
                with anyio.move_on_after(self.idle_timeout) as scope:
                    await self.changed.wait()
            if not self._reports:  # the idle timeout passed with no report
                for child, parent in self.pending.values():
                    parent.errors.append(ServiceError("dispatcher", ErrorType.TIMEOUT,
                                                      f"child {child.file.name or child.file.sha256} never reported back"))
                self.pending.clear()
                return
            reports, self._reports = self._reports, []
            for report in reports:
                pending = self.pending.pop(_key(report.node), None)
                if pending is not None:
                    pending.parent.children.append(report.node)
                    await self._attach(FileAnalysis(report.node, report.extracted, report.temp_data))

    async def _attach(self, analysis: FileAnalysis) -> None:
        """Record a finished node and send its children for analysis, within the tree's bounds."""
        node, params = analysis.node, self.sub.params
        self.nodes[_key(node)] = node
        accepted = 0
        refused: dict[ErrorType, list[str]] = {}
        for child in analysis.extracted:
            label = child.file.name or child.file.sha256
            if ref_key(child.file) in self.seen:
                node.children.append(self._duplicate(child.file, node.depth + 1, child.relation))
            elif node.depth + 1 > params.max_depth:
                refused.setdefault(ErrorType.MAX_DEPTH, []).append(label)
            elif len(self.seen) >= params.max_files:
                refused.setdefault(ErrorType.MAX_FILES, []).append(label)
            elif accepted >= params.max_children:
                refused.setdefault(ErrorType.MAX_CHILDREN, []).append(label)
            else:
                accepted += 1
                self.seen.add(ref_key(child.file))
                await self._send_child(node, child, analysis.temp_data)
        limits = {ErrorType.MAX_DEPTH: f"depth limit {params.max_depth}", ErrorType.MAX_FILES: f"{params.max_files} files per tree",
                  ErrorType.MAX_CHILDREN: f"{params.max_children} children per file"}
        for kind, labels in refused.items():
            shown = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
            node.errors.append(ServiceError("dispatcher", kind,
                                            f"{len(labels)} child sample(s) not analysed ({limits[kind]}): {shown}"))

    def _duplicate(self, file: FileRef, depth: int, relation: Relation) -> FileNode:
        """A stub for a sample already in the tree: shown where it was found, analysed once elsewhere."""
        original = self.nodes.get(ref_key(file))
        if original is not None:
            file_type = original.type
        else:  # still being analysed; a sample's type needs no analysis
            file_type = "" if file.kind is SampleKind.FILE else sample_type(file.kind, file.name)
        return FileNode(file.sha256, file.name or file.sha256, file_type, file.size, depth,
                        relation=relation, kind=file.kind, duplicate=True)

    async def _send_child(self, parent: FileNode, child: ExtractedFile, temp_data: dict[str, object]) -> None:
        params = self.sub.params
        if temp_data != params.temp_data:
            params = msgspec.structs.replace(params, temp_data=temp_data)
        sub = ChildSubmission(
            sid=self.sub.sid, attempt=self.attempt, file=child.file, parent_sha256=parent.sha256,
            depth=parent.depth + 1, relation=child.relation, params=params,
            reply_to=self.mesh.names.reply(self.mesh.dispatcher_id, "node"),
        )
        self.pending[ref_key(child.file)] = Pending(sub, parent)
        await publish(self.mesh.js, self.mesh.names.submit_child, encode(sub), f"{self.sub.sid}:{self.attempt}:{ref_key(child.file)}")


async def analyse_child(mesh: Mesh, child: ChildSubmission, delivery: int = 1) -> NodeReport:
    """A child's own analysis (on whichever dispatcher took it); its children are the owner's call.
    `delivery`: how many times its message has been delivered (more than once: a resumed analysis)."""
    analysis = await analyse_file(mesh, child.sid, child.file, child.depth, child.relation, child.params,
                                  first_try=child.attempt == 1 and delivery == 1)
    return NodeReport(child.sid, child.attempt, child.parent_sha256, analysis.node, analysis.extracted, analysis.temp_data)

