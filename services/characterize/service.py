"""Characterize: what every file gets, whatever its type.

A key-value section of hashes (md5, sha1, sha256, ssdeep, TLSH) and an entropy section with a
per-block graph. High entropy fires a heuristic only where it is unexpected: compressed formats
(archives, images, OOXML, PDF) are near-random by design, so there it is only said.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from services.characterize import digests
from services.characterize.entropy import Thresholds, graph, high_entropy, profile
from services.sdk import Request, Result, ResultKeyValueSection, ResultSection, ServiceBase

HIGH_ENTROPY = 1
Positive = Annotated[int, msgspec.Meta(gt=0)]  # a block count or size of 0 would divide by zero


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """The service's other config keys (field names = keys; the entropy thresholds are `Thresholds`)."""

    max_fuzzy_hash_bytes: int = 32 * 1024 * 1024  # above this, ssdeep and TLSH are skipped
    entropy_max_blocks: Positive = 256  # the block profile has at most this many blocks...
    entropy_min_block_bytes: Positive = 4096  # ...of at least this many bytes
    compressed_types: str  # a regex of the types compressed by design (the list lives in the manifest)


class Characterize(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.limits = self.config_as(Limits)
        self.thresholds = self.config_as(Thresholds)
        self.compressed_types = re.compile(self.limits.compressed_types)

    def get_tool_version(self) -> str:
        return digests.TOOL_VERSION

    def execute(self, request: Request) -> None:
        data = request.file_contents
        request.result = result = Result()
        result.add_section(self._hashes(data))
        result.add_section(self._entropy(data, request.file_type))

    def _hashes(self, data: bytes) -> ResultKeyValueSection:
        section = ResultKeyValueSection("File hashes", {"size": len(data), **digests.exact(data)})
        if len(data) > self.limits.max_fuzzy_hash_bytes:
            skipped = f"not computed: the file is larger than {self.limits.max_fuzzy_hash_bytes:,} bytes"
            section.update_items({"ssdeep": skipped, "tlsh": skipped})
            return section
        section.update_items(digests.fuzzy(data))
        return section

    def _entropy(self, data: bytes, file_type: str) -> ResultSection:
        prof = profile(data, self.limits.entropy_max_blocks, self.limits.entropy_min_block_bytes)
        section = ResultSection("Entropy")
        section.add_line(f"Overall: {prof.overall:.3f} bits per byte over {prof.size:,} bytes")
        low, high = min(prof.blocks, default=0.0), max(prof.blocks, default=0.0)
        section.add_line(f"Blocks: {len(prof.blocks)} of {prof.block_size:,} bytes, min {low:.2f}, max {high:.2f} (graph: 0 to 8 bits)")
        section.add_lines(graph(prof))
        reason = high_entropy(prof, self.thresholds)
        if reason and self.compressed_types.match(file_type):
            section.add_line(f"High entropy, as expected for {file_type}: {reason}")
        elif reason:
            ResultSection("High-entropy content (packed or encrypted?)", reason, heuristic=HIGH_ENTROPY, parent=section)
        return section
