"""What an operator approves a service to be, read off its manifest (`sluice service approve`,
`sluice provision`): its stage, accepts/rejects, kinds, timeout, score range and whether it may drop.

The score range comes from the manifest's heuristics: a result's score is the sum of the
heuristics its sections fire, so the range is what its heuristics could add up to if each fired
in up to `HITS_PER_HEURISTIC` sections (the operator may set another). Only a FILTER or EXTRACT
service may be approved to drop a file (a drop ends the file's later stages: the safelist drops
a known-good file, extract an archive it unpacked, whose contents are analysed instead).
"""

from __future__ import annotations

import time

from schemas.messages import ApprovedService, Stage
from services.sdk.manifest import HeuristicSpec, Manifest

HITS_PER_HEURISTIC = 10
DROP_STAGES = frozenset({Stage.FILTER, Stage.EXTRACT})


def _extremes(h: HeuristicSpec) -> tuple[int, int]:
    """The lowest and highest score one hit of `h` can give (signatures each score, capped)."""
    scores = [h.score, *h.signature_score_map.values()]
    low, high = min(scores), max(scores)
    return low, high if h.max_score is None else min(high, h.max_score)


def score_range(manifest: Manifest) -> tuple[int, int]:
    lows, highs = zip(*map(_extremes, manifest.heuristics)) if manifest.heuristics else ((0,), (0,))
    return (HITS_PER_HEURISTIC * sum(min(0, lo) for lo in lows),
            HITS_PER_HEURISTIC * sum(max(0, hi) for hi in highs))


def approval_for(manifest: Manifest, scores: tuple[int, int] | None = None,
                 may_drop: bool | None = None) -> ApprovedService:
    """The approval an operator gives `manifest` by default (`scores`, `may_drop`: overrides)."""
    low, high = scores or score_range(manifest)
    stage = Stage(manifest.stage)
    if may_drop and stage not in DROP_STAGES:
        raise ValueError(f"{manifest.name}: only a {'/'.join(sorted(s.value for s in DROP_STAGES))} service may drop files")
    return ApprovedService(
        name=manifest.name, stage=stage, accepts=manifest.accepts, rejects=manifest.rejects,
        timeout=manifest.timeout, score_min=low, score_max=high,
        may_drop=stage in DROP_STAGES if may_drop is None else may_drop,
        kinds=list(manifest.kinds), enabled=manifest.enabled, approved_at=time.time())
