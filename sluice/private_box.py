"""What `sluice scan` changes on the embedded server it starts for itself (no `--nats`).

Each submitter identity's queue hands out at most `OperatorLimits.trees_per_submitter` (256)
trees at once, over every dispatcher together (bus.provision makes it the queue's
`max_ack_pending`): on a shared server that is what keeps one identity's flood from taking every
dispatcher's slots from the others (dispatcher.quota, dispatcher.fairshare). A scan's own box
runs one dispatcher per `--workers` process, each able to analyse MAX_TREES trees at once, and
a quota of one dispatcher's worth left all but one of them waiting on the server: with two
workers the wait for 2,000 files took half as long again (medians 22.3 s and 14.5 s, measured
when both were 64, docs/performance.md).

There the quota is raised to MAX_TREES per worker, so every dispatcher can be full. Safe
because that server is the scan's alone: it listens on a loopback port chosen at start, its
store is locked to this one process (`cli._store_lock`), under the one-box's auth only the
scan's own processes hold credentials for it (with `--no-auth` any local process could also
forge results: fairness is then the least of it), and it stops when the scan ends. So the one
identity submitting is the scan itself, with nobody to be fair to. Each dispatcher still takes
at most MAX_TREES roots and MAX_CHILDREN children (children have their own queue, so roots
waiting for their children never hold the children's slots): the box holds no more at once than
its dispatchers were built for. An operator's own `SLUICE_LIMIT_TREES_PER_SUBMITTER` is kept as
set, and `sluice up`, `--nats` and every other server keep the quota as it is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from bus.capacity import LIMIT_ENV
from dispatcher.dispatcher import MAX_TREES

TREES_ENV = LIMIT_ENV + "TREES_PER_SUBMITTER"


@contextlib.contextmanager
def scan_quota(workers: int) -> Iterator[None]:
    """For the block: each submitter may have MAX_TREES trees in flight per worker, unless the
    operator set the quota. Through the environment, as every reader of the quota takes it from
    there (provisioning here and in the worker processes, which inherit it, and each dispatcher);
    undone after, so a test calling `main` twice in one process sees the default again."""
    if TREES_ENV in os.environ:
        yield
        return
    os.environ[TREES_ENV] = str(MAX_TREES * workers)
    try:
        yield
    finally:
        os.environ.pop(TREES_ENV, None)
