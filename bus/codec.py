"""MessagePack for every wire Struct; one reusable encoder and a decoder per type; the version
header every published message carries and every consumer checks (schemas.wire)."""

from __future__ import annotations

import functools
from typing import TypeVar

import msgspec

from schemas.wire import LEGACY_VERSION, WIRE_HEADER, WIRE_VERSION, unreadable

T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()


class BadMessage(ValueError):
    """A message that does not decode as the type its subject promises."""


def wire_headers(msg_id: str | None = None) -> dict[str, str]:
    """The headers of a published message: the contract it follows, and its de-duplication id."""
    return {WIRE_HEADER: WIRE_VERSION} if msg_id is None else {"Nats-Msg-Id": msg_id, WIRE_HEADER: WIRE_VERSION}


def wire_version(headers: dict[str, str] | None) -> str | None:
    """The contract a received message says it follows (None: it says nothing, so 1.0)."""
    return headers.get(WIRE_HEADER) if headers else None


def check_wire(headers: dict[str, str] | None) -> None:
    """BadMessage if the message follows a major version of the contract this code cannot read
    (no header: 1.0). One header compare, before any decoding."""
    version = headers.get(WIRE_HEADER, LEGACY_VERSION) if headers else LEGACY_VERSION
    if version != WIRE_VERSION and (reason := unreadable(version)):
        raise BadMessage(reason)


def encode(obj: msgspec.Struct) -> bytes:
    return _encoder.encode(obj)


@functools.cache
def _decoder(cls: type[T]) -> msgspec.msgpack.Decoder:
    return msgspec.msgpack.Decoder(cls)


def decode(data: bytes, cls: type[T]) -> T:
    try:
        return _decoder(cls).decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        # msgspec lets a string that is not UTF-8 through as UnicodeDecodeError (found by
        # tests/test_properties.py): as bad as any other malformed message.
        raise BadMessage(f"not a valid {cls.__name__}: {exc}") from None
