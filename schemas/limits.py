"""Default bounds, and the operator's maximums. Every bound, when hit, is recorded as an error:
never a silent cut."""

from __future__ import annotations

import msgspec


class Limits:
    max_depth = 6
    max_files = 500
    max_children = 100
    inline_max = 64 * 1024  # files up to this size travel inside the messages
    max_file_size = 100 * 1024 * 1024
    timeout_grace = 5.0  # seconds added to a service's manifest timeout
    attempts = 3  # dispatch attempts per (file, service), as Assemblyline
    queue_wait = 10 * 60.0  # seconds a task may wait in a busy service's queue before its timeout runs anyway
    tree_timeout = 20 * 60.0  # a tree with no progress for this long completes with errors
    alert_threshold = 500


class OperatorLimits(msgspec.Struct, frozen=True):
    """What the dispatcher allows whatever a submission asks: a submission asking for more gets
    these (and its tree says so), and each submitter identity is held to its own quotas."""

    max_depth: int = Limits.max_depth
    max_files: int = Limits.max_files
    max_children: int = Limits.max_children
    max_file_size: int = Limits.max_file_size
    allow_deep_scan: bool = True
    trees_per_submitter: int = 256  # one identity's trees at once (alone; fewer while others are active)
    submissions_per_minute: int = 6000  # per submitter identity; more are refused with a summary saying so
    stored_bytes_per_hour: int = 20 * 1024**3  # uploads promoted per writer identity; more are bad_input
