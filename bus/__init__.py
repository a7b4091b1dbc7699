"""NATS plumbing: connections, provisioning, subjects, codecs, blob transfer and the embedded server."""

from bus import nats_fixes as _nats_fixes  # noqa: F401 - nats-py work-arounds, in every process that uses the bus
