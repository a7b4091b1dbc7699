"""The version of the wire contract, and how a message says which version it follows.

Every message Sluice publishes carries the header `Sluice-Wire: <major>.<minor>` rather than a
field in its body: the Structs (and every golden message) stay as they are, a reader checks the
version with one header compare before it decodes anything, and a non-Python client sets one
header instead of adding a field to every map it builds. A message without the header is read
as 1.0, the contract before the header existed (releases up to de1b7dc, and hand-built clients).

Policy (docs/wire.md says it at length): a minor version only adds optional fields with
defaults, which readers of the same major ignore; anything else (a field renamed, removed,
retyped, given a new default, or a new enum value) is a new major. A reader reads every minor
of its own major and refuses any other major as a dead letter that says why.
"""

from __future__ import annotations

import functools

WIRE_HEADER = "Sluice-Wire"
WIRE_VERSION = "1.2"
LEGACY_VERSION = "1.0"  # what a message without the header follows


def major(version: str) -> int:
    """The major number of `version` ("1.0" -> 1); ValueError if it is not `<major>.<minor>`."""
    head, dot, tail = version.partition(".")
    if not (dot and head.isdigit() and tail.isdigit() and len(version) <= 16):
        raise ValueError(f"wire version {version[:20]!r} is not <major>.<minor>")
    return int(head)


READ_MAJOR = major(WIRE_VERSION)


@functools.lru_cache(maxsize=64)  # a handful of versions meet in a mesh; bounded against junk headers
def unreadable(version: str) -> str | None:
    """Why a message following `version` cannot be read here; None if it can."""
    if version == WIRE_VERSION:
        return None
    try:
        if major(version) == READ_MAJOR:
            return None
    except ValueError as exc:
        return str(exc)
    return (f"wire contract {version} is not readable here: this component reads {READ_MAJOR}.x "
            f"(it speaks {WIRE_VERSION}); upgrade it, or replay the letter once it is upgraded")
