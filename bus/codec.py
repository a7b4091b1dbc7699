"""MessagePack for every wire Struct; one reusable encoder and a decoder per type."""

from __future__ import annotations

import functools
from typing import TypeVar

import msgspec

T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()


class BadMessage(ValueError):
    """A message that does not decode as the type its subject promises."""


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
