"""Property tests: every decoder and the manifest loader fail only with their own clear error.

Whatever bytes arrive on a subject, `decode` returns the promised type or raises `BadMessage`;
whatever a manifest holds, `parse_manifest` returns a `Manifest` or raises `ManifestError`
naming the file. Nothing else escapes (no KeyError, TypeError, RecursionError, ...).
"""

from __future__ import annotations

import time

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.codec import BadMessage, decode, encode
from schemas.messages import (
    ChildSubmission,
    DeadLetter,
    FileNode,
    FileRef,
    NodeReport,
    RulesAnnouncement,
    RuleSet,
    ServiceRecord,
    ServiceResult,
    Stage,
    Submission,
    SubmissionParams,
    Summary,
    Task,
)
from services.sdk.manifest import Manifest, ManifestError, parse_manifest

WIRE_TYPES = [Submission, ChildSubmission, Task, ServiceResult, NodeReport, Summary, ServiceRecord, DeadLetter,
              RuleSet, RulesAnnouncement]
REF = FileRef("a" * 64, 3, "x.bin", b"abc")
SAMPLES = {
    Submission: Submission("0123456789abcdef", [REF], SubmissionParams(temp_data={"passwords": ["x"]}), {}, time.time()),
    ChildSubmission: ChildSubmission("0123456789abcdef", 1, REF, "b" * 64, 1, "dropped-by", SubmissionParams(), "p.reply.d.node"),
    Task: Task("c", "0123456789abcdef", REF, "text/plain", Stage.CORE, ["echo"], time.time(), "p.reply.d.result"),
    ServiceResult: ServiceResult("c", "echo", "1", score=10),
    NodeReport: NodeReport("0123456789abcdef", 1, "b" * 64, FileNode("a" * 64, "x", "text/plain", 3, 1)),
}

# JSON-like values, nested: what a YAML manifest or a hostile msgpack map can hold.
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=True) | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def _decodes_or_refuses(data: bytes, cls: type) -> None:
    try:
        assert isinstance(decode(data, cls), cls)
    except BadMessage as exc:
        assert cls.__name__ in str(exc)


@pytest.mark.parametrize("cls", WIRE_TYPES, ids=lambda c: c.__name__)
@given(data=st.binary(max_size=512))
@settings(max_examples=150, deadline=None)
def test_random_bytes_decode_or_raise_bad_message(cls, data):
    _decodes_or_refuses(data, cls)


@pytest.mark.parametrize("cls", WIRE_TYPES, ids=lambda c: c.__name__)
@given(value=values)
@settings(max_examples=150, deadline=None)
def test_well_formed_msgpack_of_the_wrong_shape_is_bad_message(cls, value):
    _decodes_or_refuses(msgspec.msgpack.encode(value), cls)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
@given(data=st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_real_messages_decode_or_raise_bad_message(cls, data):
    """A real message with bytes flipped, cut or inserted: the hostile case closest to valid."""
    raw = bytearray(encode(SAMPLES[cls]))
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and where < len(raw):
            raw[where] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del raw[where:]
        else:
            raw[where:where] = data.draw(st.binary(min_size=1, max_size=8))
    _decodes_or_refuses(bytes(raw), cls)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_real_messages_round_trip(cls):
    assert decode(encode(SAMPLES[cls]), cls) == SAMPLES[cls]


MINIMAL = {"name": "svc", "version": "1"}
manifest_fields = st.sampled_from(sorted(Manifest.__struct_fields__) + ["unknown_field", "heuristics", "update_config"])


@given(extra=st.dictionaries(manifest_fields, values, max_size=4))
@settings(max_examples=400, deadline=None)
def test_manifest_loader_returns_a_manifest_or_a_manifest_error(extra):
    try:
        manifest = parse_manifest({**MINIMAL, **extra}, "svc/service_manifest.yml")
    except ManifestError as exc:
        assert str(exc).startswith("svc/service_manifest.yml: ")
    else:
        assert isinstance(manifest, Manifest)


@given(raw=values)
@settings(max_examples=200, deadline=None)
def test_manifest_loader_on_any_document(raw):
    if not isinstance(raw, dict):
        return  # load_manifest refuses non-mappings before parse_manifest (tested in test_units)
    try:
        parse_manifest(raw, "m.yml")
    except ManifestError as exc:
        assert str(exc).startswith("m.yml: ")
