"""md5 and sha1 for every file of every tree, so a search by either finds any file, not only
those the characterize service hashed (a file it did not reach: safelisted and dropped, a
submission that chose other services, a timeout, files past a tree's limits).

Summaries name files by sha256 only. Where a summary says more, that is used: the characterize
service's "File hashes" section, and a URI's, domain's or IP's own value (its sha256 is of that
value). Every other file is queued in the index (`undigested`) and hashed here from the file
store, once per web front: its bytes are fetched (checked against their sha256 by bus.blobs),
hashed, and the md5/sha1 terms added to every submission the index has with that file and to
any that arrives later (`digests`). A file whose bytes are gone from the store (its retention
passed) cannot be hashed: it stays findable by sha256 only.
"""

from __future__ import annotations

import hashlib
import json
import logging

import anyio
from nats.errors import Error as NatsError

from bus.blobs import BlobError, BlobStore
from schemas.messages import FileNode, FileRef, SampleKind, Summary, walk

log = logging.getLogger("sluice.web")

BATCH = 32  # files hashed per index transaction
RETRY_AFTER = 5.0  # seconds before trying again when the file store did not answer (not: the file is gone)
HASHED_BY = "characterize"
Digest = tuple[str, str]  # (md5, sha1); ("", "") for a file whose bytes could not be had


def hash_pair(data: bytes) -> Digest:
    return hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _from_section(node: FileNode) -> Digest | None:
    for view in node.results:
        if view.service != HASHED_BY:
            continue
        for section in view.sections:
            if section.body_format != "KEY_VALUE":
                continue
            try:
                items = json.loads(section.body)
            except ValueError:
                continue
            if isinstance(items, dict) and items.get("sha256") == node.sha256:
                md5, sha1 = items.get("md5"), items.get("sha1")
                if isinstance(md5, str) and isinstance(sha1, str) and len(md5) == 32 and len(sha1) == 40:
                    return md5.lower(), sha1.lower()
    return None


def digests_in(summary: Summary) -> tuple[dict[str, Digest], dict[str, int]]:
    """What the summary itself tells: {sha256: (md5, sha1)}, and the files it does not tell
    about, {sha256: size}, to be hashed from the store."""
    known: dict[str, Digest] = {}
    unknown: dict[str, int] = {}
    for node in walk(summary.files):
        if node.sha256 in known:
            continue
        if node.kind is not SampleKind.FILE:
            value = node.name.encode()
            if hashlib.sha256(value).hexdigest() == node.sha256:
                known[node.sha256] = hash_pair(value)
            continue
        found = _from_section(node)
        if found is not None:
            known[node.sha256] = found
            unknown.pop(node.sha256, None)
        else:
            unknown[node.sha256] = node.size
    return known, unknown


async def digest(blobs: BlobStore, sha256: str, size: int) -> Digest | None:
    """The file's md5 and sha1 from the store; ("", "") if its bytes are gone or wrong; None if
    the store did not answer (try again later)."""
    try:
        data = await blobs.get(FileRef(sha256, size))
    except BlobError as exc:
        log.info("file %s cannot be hashed for md5/sha1 search: %s", sha256, exc)
        return "", ""
    except (TimeoutError, OSError, NatsError) as exc:
        log.warning("file %s not hashed yet (the file store did not answer): %s", sha256, exc)
        return None
    except Exception:  # a fault here must not take the web front down with it: logged, tried again later
        log.exception("file %s not hashed yet", sha256)
        return None
    return await anyio.to_thread.run_sync(hash_pair, data)
