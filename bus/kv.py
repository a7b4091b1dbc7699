"""KV helpers: listing a bucket's keys reliably (for the service registry the dispatcher reads
every second), and compare-and-set writes (for what several processes update: quotas, sign-in
failures, alert triage).

Not nats-py's `KeyValue.keys()`: its watcher declares the listing complete when the server says
nothing is pending, which while keys are being rewritten is often true before every key has been
read. Measured here: with three keys rewritten every 10 ms, 32 of 500 listings came back short
and 1 empty; in the dispatcher, a service missing from one listing was silently left out of
every file planned in that second (a 2,000-submission fault test caught a tree analysed without
its extract service). The stream's own subject list has no such race: one request.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.kv import KeyValue


async def kv_keys(js: JetStreamContext, bucket: str) -> list[str]:
    """The keys of `bucket` that have a value or a delete marker (a deleted key's `get` raises)."""
    prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"{prefix}>")
    return sorted(subject.removeprefix(prefix) for subject in info.state.subjects or {})


async def write_at(kv: KeyValue, key: str, value: bytes, revision: int | None) -> int:
    """Write `value` only if `key` is still at `revision` (None or 0: only if it has no value);
    its new revision, or KeyWrongLastSequenceError if another writer was first (read again and retry)."""
    if revision:
        return await kv.update(key, value, last=revision)
    return await kv.create(key, value)
