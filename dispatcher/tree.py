"""A submission's verdict tree: its root files analysed here, its children anywhere, bounded.

The dispatcher that took the submission owns the tree. Children go back on the submit stream
as `ChildSubmission`s (any dispatcher may analyse them) and their node reports come back to
the owner, who alone decides which grandchildren are analysed: depth, files per tree, children
per file, and a sha256 already in the tree (which ends cycles). The owner holds only the root's
message while it waits; children ride another consumer, so waiting parents never hold the slots
their children need.
"""

from __future__ import annotations

import logging

import anyio
import msgspec

from bus.codec import encode
from bus.publish import jetstream_publish
from dispatcher.analysis import FileAnalysis, Mesh, analyse_file
from schemas.limits import Limits
from schemas.messages import ChildSubmission, ErrorType, ExtractedFile, FileNode, NodeReport, ServiceError, Submission

log = logging.getLogger("sluice.dispatcher")


class Tree:
    def __init__(self, mesh: Mesh, submission: Submission, attempt: int, idle_timeout: float = Limits.tree_timeout) -> None:
        self.mesh = mesh
        self.sub = submission
        self.attempt = attempt
        self.idle_timeout = idle_timeout
        self.roots: list[FileNode] = []
        self.nodes: dict[str, FileNode] = {}
        self.seen: set[str] = set()
        self.pending: dict[str, ChildSubmission] = {}
        self.changed = anyio.Event()
        self._reports: list[NodeReport] = []

    def _on_report(self, report: NodeReport) -> None:
        if report.attempt == self.attempt and report.node.sha256 in self.pending:
            self._reports.append(report)
            self.changed.set()

    async def run(self) -> list[FileNode]:
        params = self.sub.params
        self.mesh.router.watch_tree(self.sub.sid, self._on_report)
        try:
            async with anyio.create_task_group() as tg:
                for file in self.sub.files:
                    if file.sha256 in self.seen:
                        self.roots.append(self._duplicate(file, 0, "root"))
                        continue
                    self.seen.add(file.sha256)
                    tg.start_soon(self._analyse_root, file, params)
            await self._collect_children()
        finally:
            self.mesh.router.unwatch_tree(self.sub.sid)
        order = {f.sha256: i for i, f in reversed(list(enumerate(self.sub.files)))}
        return sorted(self.roots, key=lambda n: (order[n.sha256], n.duplicate))

    async def _analyse_root(self, file, params) -> None:
        analysis = await analyse_file(self.mesh, self.sub.sid, file, 0, "root", params)
        self.roots.append(analysis.node)
        await self._attach(analysis)

    async def _collect_children(self) -> None:
        while self.pending:
            with anyio.move_on_after(self.idle_timeout) as scope:
                await self.changed.wait()
            self.changed = anyio.Event()
            if scope.cancelled_caught:
                for child in self.pending.values():
                    parent = self.nodes[child.parent_sha256]
                    parent.errors.append(ServiceError("dispatcher", ErrorType.TIMEOUT,
                                                      f"child {child.file.name or child.file.sha256} never reported back"))
                self.pending.clear()
                return
            reports, self._reports = self._reports, []
            for report in reports:
                if self.pending.pop(report.node.sha256, None) is not None:
                    self.nodes[report.parent_sha256].children.append(report.node)
                    await self._attach(FileAnalysis(report.node, report.extracted, report.temp_data))

    async def _attach(self, analysis: FileAnalysis) -> None:
        """Record a finished node and send its children for analysis, within the tree's bounds."""
        node, params = analysis.node, self.sub.params
        self.nodes[node.sha256] = node
        accepted = 0
        refused: dict[ErrorType, list[str]] = {}
        for child in analysis.extracted:
            label = child.file.name or child.file.sha256
            if child.file.sha256 in self.seen:
                node.children.append(self._duplicate(child.file, node.depth + 1, child.relation))
            elif node.depth + 1 > params.max_depth:
                refused.setdefault(ErrorType.MAX_DEPTH, []).append(label)
            elif len(self.seen) >= params.max_files:
                refused.setdefault(ErrorType.MAX_FILES, []).append(label)
            elif accepted >= params.max_children:
                refused.setdefault(ErrorType.MAX_CHILDREN, []).append(label)
            else:
                accepted += 1
                self.seen.add(child.file.sha256)
                await self._send_child(node, child, analysis.temp_data)
        limits = {ErrorType.MAX_DEPTH: f"depth limit {params.max_depth}", ErrorType.MAX_FILES: f"{params.max_files} files per tree",
                  ErrorType.MAX_CHILDREN: f"{params.max_children} children per file"}
        for kind, labels in refused.items():
            shown = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
            node.errors.append(ServiceError("dispatcher", kind, f"{len(labels)} extracted file(s) not analysed ({limits[kind]}): {shown}"))

    def _duplicate(self, file, depth: int, relation: str) -> FileNode:
        """A stub for a sha256 already in the tree: shown where it was found, analysed once elsewhere."""
        original = self.nodes.get(file.sha256)
        return FileNode(file.sha256, file.name or file.sha256, original.type if original else "", file.size, depth,
                        relation=relation, duplicate=True)

    async def _send_child(self, parent: FileNode, child: ExtractedFile, temp_data: dict[str, object]) -> None:
        params = self.sub.params
        if temp_data != params.temp_data:
            params = msgspec.structs.replace(params, temp_data=temp_data)
        sub = ChildSubmission(
            sid=self.sub.sid, attempt=self.attempt, file=child.file, parent_sha256=parent.sha256,
            depth=parent.depth + 1, relation=child.relation, params=params,
            reply_to=self.mesh.names.reply(self.mesh.dispatcher_id, "node"),
        )
        self.pending[child.file.sha256] = sub
        await jetstream_publish(self.mesh.js, self.mesh.names.submit_child, encode(sub),
                                headers={"Nats-Msg-Id": f"{self.sub.sid}:{self.attempt}:{child.file.sha256}"})


async def analyse_child(mesh: Mesh, child: ChildSubmission) -> NodeReport:
    """A child's own analysis (on whichever dispatcher took it); its children are the owner's call."""
    analysis = await analyse_file(mesh, child.sid, child.file, child.depth, child.relation, child.params)
    return NodeReport(child.sid, child.attempt, child.parent_sha256, analysis.node, analysis.extracted, analysis.temp_data)

