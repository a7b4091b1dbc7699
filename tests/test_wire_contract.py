"""The wire as a versioned contract: generated artifacts match the code, every recorded golden
message still decodes, unknown fields are ignored, and a major version this code cannot read is
dead-lettered with its reason (on every subject a component reads, against a real nats-server)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio
import jsonschema_rs
import msgspec
import pytest
from nats.js.api import DeliverPolicy

from bus import dlq
from bus.codec import BadMessage, check_wire, decode, encode, wire_headers
from bus.deadletter import REPLAYS_HEADER
from bus.subjects import Names
from schemas.examples import EXAMPLES, FILE
from schemas import messages
from schemas.messages import DeadLetter, Submission, SubmissionParams, Task
from schemas.wire import READ_MAJOR, WIRE_HEADER, WIRE_VERSION, major
from sluice import wiredoc
from sluice.client import Client
from sluice.onebox import onebox
from archives import make_zip
from svcs import Echo, make

pytestmark = pytest.mark.timeout(60)

GOLDENS = sorted(p for p in wiredoc.GOLDEN_DIR.glob("*/*.msgpack") if major(p.parent.name) == READ_MAJOR)


def test_generated_artifacts_match_the_code():
    """JSON Schemas, the recorded shape, goldens and docs/wire.md's tables: `python -m sluice.wiredoc` is current."""
    assert wiredoc.stale() == []


def test_the_reference_names_every_subject_stream_bucket_and_header():
    """docs/wire.md is hand-written above its tables: a renamed subject or bucket must show up there."""
    n = Names("pfx")
    names = [n.submit_root, n.submit_child, n.summary("<sid>"), n.alert("<sid>"), n.dead_letter("<origin>"),
             n.reply("<dispatcher>", "node"), n.result_reply(n.reply("<dispatcher>", "result"), "<service>"),
             n.submit_stream, n.task_stream, n.reply_stream, n.summary_stream, n.dlq_stream,
             n.cache_bucket, n.registry_bucket, n.file_bucket, n.safelist_bucket, n.rules_bucket, n.ruleset_store,
             n.ROOT_CONSUMER, n.CHILD_CONSUMER, n.service_consumer("<service>"), n.dispatcher_consumer("<id>")]
    doc = wiredoc.DOC.read_text()
    missing = [name for name in (x.replace("pfx", "<prefix>").replace("PFX", "<PREFIX>") for x in names) if name not in doc]
    missing += [h for h in (WIRE_HEADER, REPLAYS_HEADER, "Nats-Msg-Id") if f"`{h}" not in doc]
    assert not missing, f"docs/wire.md does not mention {missing}"


def test_the_previous_release_is_recorded_as_1_0():
    """1.0 is what releases before the header (de1b7dc) wrote: their goldens stay decodable. A
    message type added later (ApprovedService, 1.1) has no 1.0 golden, since 1.0 never wrote one."""
    recorded = json.loads((wiredoc.VERSIONS_DIR / "1.0.json").read_text())
    assert {p.stem for p in (wiredoc.GOLDEN_DIR / "1.0").glob("*.msgpack")} == set(wiredoc.BY_NAME) & set(recorded)
    assert not wiredoc.incompatibilities(recorded, wiredoc.shape())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_json_schema_accepts_the_example_and_refuses_a_broken_one(name: str):
    """The schemas a client in another language validates against say what the code reads."""
    validator = jsonschema_rs.validator_for(json.loads((wiredoc.JSON_DIR / f"{name}.json").read_text()))
    example = json.loads(msgspec.json.encode(EXAMPLES[name]))
    validator.validate(example)
    fields = msgspec.inspect.type_info(type(EXAMPLES[name])).fields
    for required in (f.encode_name for f in fields if f.required):
        assert not validator.is_valid({k: v for k, v in example.items() if k != required}), required
    assert not validator.is_valid({**example, fields[0].encode_name: True})  # no field of theirs is a bool first


def test_every_struct_of_the_messages_module_is_documented():
    """A new wire type must join the catalogue (sluice/wiredoc.MESSAGES) and the examples, or be
    reachable from a message that is there. MaxDeliveriesAdvisory is nats-server's, not ours."""
    structs = {c for c in vars(messages).values()
               if isinstance(c, type) and issubclass(c, msgspec.Struct) and c.__module__ == messages.__name__}
    assert structs - set(wiredoc.wire_types()) == {messages.MaxDeliveriesAdvisory}
    assert set(EXAMPLES) == set(wiredoc.BY_NAME)


def test_every_message_has_a_golden_and_a_schema():
    assert {p.stem for p in (wiredoc.GOLDEN_DIR / WIRE_VERSION).glob("*.msgpack")} == set(wiredoc.BY_NAME)
    assert {p.stem for p in wiredoc.JSON_DIR.glob("*.json")} == {*wiredoc.BY_NAME, "sluice-wire"}


def _contains(outer: object, inner: object) -> bool:
    """Every key of `inner` (recursively) is in `outer` with the same value."""
    if isinstance(inner, dict):
        return isinstance(outer, dict) and all(k in outer and _contains(outer[k], v) for k, v in inner.items())
    if isinstance(inner, list):
        return isinstance(outer, list) and len(outer) == len(inner) and all(map(_contains, outer, inner))
    return outer == inner


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_message_of_every_version_decodes(golden: Path):
    """A message recorded by any earlier version of this major is read by this one, nothing in it lost."""
    data = golden.read_bytes()
    message = decode(data, wiredoc.BY_NAME[golden.stem])
    assert _contains(msgspec.msgpack.decode(encode(message)), msgspec.msgpack.decode(data))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_current_encoding_is_the_recorded_golden(name: str):
    """Encoding the example gives the recorded bytes: a change to them needs a new version."""
    assert encode(EXAMPLES[name]) == (wiredoc.GOLDEN_DIR / WIRE_VERSION / f"{name}.msgpack").read_bytes()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_unknown_fields_are_ignored(name: str):
    """What a later minor version writes (fields this version does not know, at any depth) is read."""
    example = EXAMPLES[name]
    raw = msgspec.msgpack.decode(encode(example))
    raw["added_in_a_later_minor"] = {"any": ["value", 1, 2.5, None]}
    nested = [f.encode_name for f in msgspec.inspect.type_info(type(example)).fields
              if isinstance(f.type, msgspec.inspect.StructType) and f.encode_name in raw]
    for field in nested:
        raw[field]["nested_addition"] = True
    assert decode(msgspec.msgpack.encode(raw), type(example)) == example


@pytest.mark.parametrize("header", [None, {}, {WIRE_HEADER: WIRE_VERSION}, {WIRE_HEADER: "1.0"}, {WIRE_HEADER: "1.99"},
                                    {"Nats-Msg-Id": "x"}])
def test_same_major_is_read(header):
    check_wire(header)


@pytest.mark.parametrize("version, says", [("2.0", "wire contract 2.0 is not readable here"), ("0.9", "reads 1.x"),
                                           ("one", "not <major>.<minor>"), ("1", "not <major>.<minor>"),
                                           ("1.0.0", "not <major>.<minor>")])
def test_other_major_or_junk_is_refused_with_the_reason(version, says):
    with pytest.raises(BadMessage, match=says):
        check_wire({WIRE_HEADER: version})


def test_no_header_is_1_0_and_refused_once_the_major_is_2(monkeypatch):
    from bus import codec
    from schemas import wire
    for module in (codec, wire):
        monkeypatch.setattr(module, "WIRE_VERSION", "2.0")
    monkeypatch.setattr(wire, "READ_MAJOR", 2)
    wire.unreadable.cache_clear()  # it remembers answers given under the real version
    try:
        check_wire({WIRE_HEADER: "2.3"})
        for headers in (None, {}, {WIRE_HEADER: "1.1"}):
            with pytest.raises(BadMessage, match="wire contract 1.[01] is not readable here: this component reads 2.x"):
                check_wire(headers)
    finally:
        wire.unreadable.cache_clear()


def test_headers_carry_the_version():
    assert wire_headers("abc") == {"Nats-Msg-Id": "abc", WIRE_HEADER: WIRE_VERSION}


# -- changing the contract needs a version ---------------------------------------------------------

@pytest.fixture
def repo_copy(tmp_path, monkeypatch):
    """The generator pointed at a copy of the artifacts, so a test can change the wire and regenerate."""
    (tmp_path / "schemas").mkdir()
    shutil.copytree(wiredoc.JSON_DIR, tmp_path / "schemas" / "jsonschema")
    shutil.copytree(wiredoc.GOLDEN_DIR, tmp_path / "golden")
    shutil.copy(wiredoc.WIRE_PY, tmp_path / "schemas" / "wire.py")
    (tmp_path / "docs").mkdir()
    shutil.copy(wiredoc.DOC, tmp_path / "docs" / "wire.md")
    monkeypatch.setattr(wiredoc, "ROOT", tmp_path)
    monkeypatch.setattr(wiredoc, "JSON_DIR", tmp_path / "schemas" / "jsonschema")
    monkeypatch.setattr(wiredoc, "VERSIONS_DIR", tmp_path / "schemas" / "jsonschema" / "versions")
    monkeypatch.setattr(wiredoc, "GOLDEN_DIR", tmp_path / "golden")
    monkeypatch.setattr(wiredoc, "WIRE_PY", tmp_path / "schemas" / "wire.py")
    monkeypatch.setattr(wiredoc, "DOC", tmp_path / "docs" / "wire.md")
    return tmp_path


def _change_shape(monkeypatch, change) -> None:
    """The generator sees the Structs as they are, changed by `change`."""
    shape = json.loads(json.dumps(wiredoc.shape()))
    change(shape)
    monkeypatch.setattr(wiredoc, "shape", lambda: shape)


def test_an_added_optional_field_bumps_the_minor(repo_copy, monkeypatch):
    def add(shape):
        shape["Task"]["properties"]["priority"] = {"type": "integer", "default": 0}
    _change_shape(monkeypatch, add)
    minor = wiredoc.bumped(WIRE_VERSION, major=False)
    assert wiredoc.regenerate() == minor
    assert f'WIRE_VERSION = "{minor}"' in (repo_copy / "schemas" / "wire.py").read_text()
    assert (repo_copy / "schemas" / "jsonschema" / "versions" / f"{minor}.json").exists()
    assert (repo_copy / "golden" / minor / "Task.msgpack").exists()
    assert (repo_copy / "golden" / WIRE_VERSION / "Task.msgpack").exists()  # the old goldens stay, decoded forever


@pytest.mark.parametrize("change, problem", [
    (lambda s: s["Task"]["properties"].pop("deadline"), "Task.deadline is gone"),
    (lambda s: s["Task"]["properties"]["depth"].update(default=1), "Task.depth changed"),
    (lambda s: s["Task"]["required"].append("depth"), "Task's required fields changed"),
    (lambda s: s["Stage"]["enum"].append("LATE"), "Stage's values changed"),
])
def test_an_incompatible_change_needs_a_major_on_purpose(repo_copy, monkeypatch, change, problem):
    _change_shape(monkeypatch, change)
    with pytest.raises(wiredoc.WireError, match=problem):
        wiredoc.regenerate()
    assert f'WIRE_VERSION = "{WIRE_VERSION}"' in (repo_copy / "schemas" / "wire.py").read_text()
    assert wiredoc.regenerate(allow_major=True) == wiredoc.bumped(WIRE_VERSION, major=True)


def test_a_recorded_golden_is_never_rewritten(repo_copy, monkeypatch):
    monkeypatch.setattr(wiredoc, "goldens", lambda: {"Task.msgpack": b"\x80"})
    with pytest.raises(wiredoc.WireError, match="golden messages are never rewritten"):
        wiredoc.regenerate()
    assert (repo_copy / "golden" / WIRE_VERSION / "Task.msgpack").read_bytes() != b"\x80"


# -- against a real mesh ---------------------------------------------------------------------------

async def test_every_message_published_says_its_version(nats_url, prefix):
    """A tree with children goes through the mesh; every message on every Sluice subject (submission,
    child, task, result, node report, summary, alert) carries this release's Sluice-Wire header."""
    alarm = make(Echo, "alarm", heuristics=[{"heur_id": 1, "name": "alarm", "score": 1000}])
    # Through NATS: a one-box's own services are otherwise handed their tasks in-process (dispatcher/lanes.py).
    async with onebox(nats_url, prefix, ["extract", alarm], local_lane=False), await Client.connect(nats_url, prefix) as client:
        seen: dict[str, set] = {}
        alerted = anyio.Event()  # the alert may be published just after the summary the client waits for

        async def on_message(msg) -> None:
            kind = msg.subject.split(".")[1] + ("." + msg.subject.split(".")[3] if ".reply." in msg.subject else "")
            seen.setdefault(kind, set()).add((msg.headers or {}).get(WIRE_HEADER))
            if kind == "alert":
                alerted.set()

        sub = await client.nc.subscribe(f"{prefix}.>", cb=on_message)
        sid = await client.submit_bytes([("pair.zip", make_zip({"a.txt": b"a\n", "b.txt": b"b\n"}))])
        summary = await client.wait(sid, timeout=30)
        with anyio.move_on_after(10):
            await alerted.wait()
        await sub.unsubscribe()
    assert summary.file_count == 3 and summary.score >= 500
    assert seen == {kind: {WIRE_VERSION} for kind in ("submit", "task", "reply.result", "reply.node", "summary", "alert")}


async def test_a_major_it_cannot_read_is_a_dead_letter_on_every_subject(nats_url, prefix):
    """Version 2.0 on a submission, a child, a task and a result: each dead-lettered with a reason naming the
    version (and keeping it, for a replay after the upgrade); a 1.x message with fields this version
    does not know completes as any other."""
    echo = make(Echo, "echo")
    async with onebox(nats_url, prefix, [echo]) as box, await Client.connect(nats_url, prefix) as client:
        names, js = box.names, client.js
        letters: list[DeadLetter] = []
        arrived = anyio.Event()

        async def on_letter(msg) -> None:
            letters.append(decode(msg.data, DeadLetter))
            if len(letters) == 4:
                arrived.set()

        sub = await js.subscribe(f"{prefix}.dlq.>", cb=on_letter, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
        future = {WIRE_HEADER: "2.0"}
        submission = Submission("future-major", [FILE], SubmissionParams())
        task = Task("corr", "sid", FILE, "text/plain", "CORE", ["echo"], 9e12, reply_to=names.reply("nobody", "result"))
        await js.publish(names.submit_root, encode(submission), headers=future)
        await js.publish(names.submit_child, encode(EXAMPLES["ChildSubmission"]), headers=future)
        await js.publish(names.task("CORE", "text/plain"), encode(task), headers=future)
        await js.publish(names.result_reply(names.reply(box.dispatcher.id, "result"), "echo"),
                         encode(EXAMPLES["ServiceResult"]), headers=future)
        with anyio.fail_after(20):
            await arrived.wait()
        assert sorted(letter.subject for letter in letters) == sorted([
            names.submit_root, names.submit_child, names.task("CORE", "text/plain"),
            names.result_reply(names.reply(box.dispatcher.id, "result"), "echo")])
        for letter in letters:
            assert "wire contract 2.0 is not readable here" in letter.reason and letter.wire == "2.0"
        # Replayed (by an operator who has not upgraded yet), it goes out with its own version again.
        [kept] = [k for k in await dlq.letters(js, names) if k.letter.subject == names.submit_root]
        await dlq.replay(js, names, kept.seq)
        with anyio.fail_after(20):
            while len(letters) < 5:
                await anyio.sleep(0.05)
        await sub.unsubscribe()
        assert (letters[4].subject, letters[4].wire, letters[4].replays) == (names.submit_root, "2.0", 1)

        raw = msgspec.msgpack.decode(encode(Submission("later-minor", [FILE], SubmissionParams())))
        raw["added_in_1_9"] = {"whatever": [1, 2]}
        raw["params"]["also_new"] = "ignored"
        await js.publish(names.submit_root, msgspec.msgpack.encode(raw), headers={WIRE_HEADER: "1.9"})
        summary = await client.wait("later-minor", timeout=30)
        assert [r.service for r in summary.files[0].results] == ["echo"] and summary.errors == 0
