"""Default bounds. Every one of them, when hit, is recorded as an error: never a silent cut."""


class Limits:
    max_depth = 6
    max_files = 500
    max_children = 100
    inline_max = 64 * 1024  # files up to this size travel inside the messages
    max_file_size = 100 * 1024 * 1024
    timeout_grace = 5.0  # seconds added to a service's manifest timeout
    attempts = 3  # dispatch attempts per (file, service), as Assemblyline
    tree_timeout = 20 * 60.0  # a tree with no progress for this long completes with errors
    alert_threshold = 500
