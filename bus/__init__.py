"""NATS plumbing: connections, provisioning, subjects, codecs, blob transfer and the embedded server."""
