"""Malformed messages on every subject Sluice reads: each one dead-lettered with its reason, nothing stuck."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time

import anyio
import pytest
from nats.errors import MaxPayloadError
from nats.js.api import DeliverPolicy

from archives import noise
from bus.codec import decode, encode
from bus.provision import provision
from bus.subjects import Names
from hostile import EICAR, write_table
from schemas.limits import Limits
from schemas.messages import (
    STAGES,
    ChildSubmission,
    DeadLetter,
    ErrorType,
    FileRef,
    ServiceRecord,
    Stage,
    Submission,
    SubmissionParams,
    Task,
)
from schemas.taxonomy import matching_types
from services.sdk.base import ServiceBase
from services.sdk.loader import builtin_services, load_service
from services.sdk.runner import consumer_filters
from sluice.client import Client
from sluice.onebox import onebox
from svcs import Echo, make

pytestmark = pytest.mark.timeout(60)

GARBAGE = b"\xc1 this is not msgpack"


async def test_malformed_message_on_every_subject(nats_url, prefix):
    echo = make(Echo, "echo")
    async with onebox(nats_url, prefix, [echo]) as box, await Client.connect(nats_url, prefix) as client:
        names, js = box.names, client.js
        did = box.dispatcher.id
        letters: list[DeadLetter] = []
        arrived = anyio.Event()

        async def on_letter(msg) -> None:
            letters.append(decode(msg.data, DeadLetter))
            if len(letters) == 8:
                arrived.set()

        sub = await js.subscribe(f"{prefix}.dlq.>", cb=on_letter, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
        ref = FileRef("0" * 64, 1, "x", b"x")
        hostile_child = ChildSubmission("sid", 1, ref, "0" * 64, 1, "dropped-by", SubmissionParams(), reply_to="elsewhere.steal")
        hostile_task = Task("corr", "sid", ref, "text/plain", "CORE", ["echo"], 9e12, reply_to="elsewhere.steal")
        await js.publish(names.submit_root, GARBAGE)
        await js.publish(names.submit_root, encode(hostile_task))  # valid msgpack, wrong shape
        good = encode(Submission("0123456789abcdef", [ref], SubmissionParams()))
        await js.publish(names.submit_root, good.replace(b"0123456789abcdef", b"\xff123456789abcdef"))  # a str not UTF-8
        await js.publish(names.submit_child, GARBAGE)
        await js.publish(names.submit_child, encode(hostile_child))
        await js.publish(names.task("CORE", "text/plain"), GARBAGE)
        await js.publish(names.task("CORE", "text/plain"), encode(hostile_task))
        await js.publish(names.reply(did, "result"), GARBAGE)
        with anyio.fail_after(20):
            await arrived.wait()
        await sub.unsubscribe()
        reasons = {(letter.subject, letter.reason.split(":")[0]) for letter in letters}
        assert {subject for subject, _ in reasons} == {
            names.submit_root, names.submit_child, names.task("CORE", "text/plain"), names.reply(did, "result")}
        assert all(letter.reason for letter in letters)
        assert any("reply_to" in letter.reason for letter in letters)
        # Nothing is stuck and nothing is redelivered: the mesh still works, and no message is pending.
        sid = await client.submit_bytes([("ok.txt", b"still fine\n")])
        summary = await client.wait(sid, timeout=20)
        assert summary.files[0].results[0].service == "echo"
        for stream, consumer in ((names.submit_stream, names.ROOT_CONSUMER), (names.submit_stream, names.CHILD_CONSUMER),
                                 (names.task_stream, names.service_consumer("echo"))):
            with anyio.fail_after(10):  # the root is acked just after its summary goes out
                while (info := await js.consumer_info(stream, consumer)).num_ack_pending:
                    await anyio.sleep(0.02)
            assert info.num_pending == 0 and info.num_redelivered == 0, (consumer, info)


# -- every subject the built-in services and the dispatcher read, and the KV values they read --------

def hostile_payloads() -> list[bytes]:
    """What a broken or hostile publisher might send: garbage, noise of several sizes, nothing at all."""
    return [GARBAGE, b"", noise(16, 1), noise(4096, 2), noise(7 * 1024 * 1024, 3)]


def task_subjects(services: list[ServiceBase], names: Names) -> dict[str, list[str]]:
    """One task subject per service (its stage, its first type), each with every service that reads it."""
    subjects = {names.task(s.manifest.stage, matching_types(s.manifest.accepts, s.manifest.rejects, s.manifest.kinds)[0])
                for s in services}
    return {subject: [s.manifest.name for s in services
                      if any(subject_matches(f, subject) for f in consumer_filters(s, names))] for subject in subjects}


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a trailing `>` one or more."""
    want, have = pattern.split("."), subject.split(".")
    if want[-1] == ">":
        return len(have) >= len(want) and all(w in ("*", h) for w, h in zip(want[:-1], have))
    return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have))


async def raw_publish_header(url: str, subject: str, size: int) -> bytes:
    """Announce a publish of `size` bytes over a bare socket, past any client-side check: what the server answers."""
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    answer = b""
    async with await anyio.connect_tcp(host, int(port)) as sock:
        await sock.receive()  # INFO
        await sock.send(b'CONNECT {"verbose":false,"pedantic":false}\r\n' + f"PUB {subject} {size}\r\n".encode())
        with anyio.fail_after(5), contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            while b"-ERR" not in answer:
                answer += await sock.receive()
    return answer


async def test_hostile_messages_on_every_subject_and_kv_value(nats_url, prefix, monkeypatch):
    for queue in ("SUBMIT", "TASKS", "REPLIES", "DLQ"):  # 7 MiB to every subject at once: more than the suite's small queues hold
        monkeypatch.setenv(f"SLUICE_MAX_BYTES_{queue}", "0")
    ruled = make(Echo, "ruled", update_config={"sources": [{"name": "r", "uri": "http://127.0.0.1:9/rules"}]})
    services = [load_service(name) for name in builtin_services()] + [ruled]
    async with onebox(nats_url, prefix, services) as box, await Client.connect(nats_url, prefix) as client:
        names, js, did = box.names, client.js, box.dispatcher.id
        stores = await provision(js, names)
        letters: list[DeadLetter] = []
        changed = anyio.Event()

        async def on_letter(msg) -> None:
            nonlocal changed
            letters.append(decode(msg.data, DeadLetter))
            changed.set()
            changed = anyio.Event()

        sub = await js.subscribe(f"{prefix}.dlq.>", cb=on_letter, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
        tasks = task_subjects(services, names)
        readers = {names.submit_root: ["dispatcher"], names.submit_child: ["dispatcher"],
                   names.reply(did, "result"): ["dispatcher"], names.reply(did, "node"): ["dispatcher"],
                   names.reply(did, "bogus"): ["dispatcher"], **tasks}
        assert {reader for those in tasks.values() for reader in those} == {s.manifest.name for s in services}
        sent: dict[str, int] = {}
        for subject in readers:
            for payload in hostile_payloads():
                await js.publish(subject, payload)
                sent[subject] = sent.get(subject, 0) + 1
        # Valid msgpack, wrong meaning: a sid that is not one subject token, a submission of no files.
        ref = FileRef("0" * 64, 1, "x", b"x")
        huge = FileRef("0" * 64, Limits.max_file_size + 1, "huge.bin")
        for forged in (Submission("../../etc", [ref]), Submission("no-files", []), Submission("huge", [huge])):
            await js.publish(names.submit_root, encode(forged))
            sent[names.submit_root] += 1
        # Over the size limit: refused by the client, and by the server from a client that does not check.
        too_big = bytes(8 * 1024 * 1024 + 1)
        with pytest.raises(MaxPayloadError):
            await js.publish(names.submit_root, too_big)
        assert b"Maximum Payload" in await raw_publish_header(nats_url, names.submit_root, len(too_big))

        expected = sum(count * len(readers[subject]) for subject, count in sent.items())
        with anyio.fail_after(30):
            while len(letters) < expected:
                await changed.wait()
        await sub.unsubscribe()
        by_subject: dict[str, set[str]] = {}
        for letter in letters:
            assert letter.reason, letter
            by_subject.setdefault(letter.subject, set()).add(letter.reason.split(":")[0])
        assert set(by_subject) == set(readers)
        assert any("must be 1-64 letters" in letter.reason for letter in letters)
        assert any("huge.bin: 104857601 bytes is over the" in letter.reason for letter in letters)
        assert any("unknown reply kind" in letter.reason for letter in letters)

        # KV values the mesh reads: a registry entry that is not a record, one whose regexes do not
        # compile, a rules announcement that is not one. None of them may stop a service or the dispatcher.
        record = ServiceRecord("forged", "1", Stage.CORE, "(", "", 5.0, "svc-forged", heartbeat=time.time() + 3600)
        await stores.registry.put("forged.x", encode(record))
        await stores.registry.put("garbage.x", GARBAGE)
        await box.dispatcher.directory.refresh()  # what its loop does every second, done now
        assert "forged" not in box.dispatcher.directory.services
        bad_rules_at = time.time()
        await stores.rules.put("ruled", GARBAGE)
        with anyio.fail_after(10):  # the service still beats after reading the bad announcement
            while decode((await stores.registry.get(next(k for k in await stores.registry.keys() if k.startswith("ruled.")))).value,
                         ServiceRecord).heartbeat <= bad_rules_at + 0.1:
                await anyio.sleep(0.1)

        # A reference whose declared size is not the file's: a clear bad_input error, not an analysis.
        liar = await client.blobs.put(b"two bytes", "liar.txt")
        await js.publish(names.submit_root, encode(Submission("liar", [FileRef(liar.sha256, 1, "liar.txt", liar.data)])))
        [node] = (await client.wait("liar", timeout=30)).files
        assert [(e.type, "not the 1 its reference declares" in e.message) for e in node.errors] == [(ErrorType.BAD_INPUT, True)]

        # Garbage where the verdict will be, and in the result cache where its results would be: the
        # client waits for the real summary, the dispatcher ignores the entries and runs the services.
        await js.publish(names.summary("eicar"), GARBAGE)
        sha = hashlib.sha256(EICAR).hexdigest()
        for stage in STAGES:  # the cache keeps one entry per file and stage
            await stores.cache.put(f"{sha}.{stage.value}", GARBAGE)

        # The rest of the system is unharmed: a normal file gets its verdict from every service.
        sid = await client.submit_bytes([("eicar.com", EICAR)], sid="eicar")
        summary = await client.wait(sid, timeout=30)
        assert summary.cached_results == 0
        # The garbage sat where the results go: the stages that ran replaced it, so a resubmission is
        # answered from the cache.
        again = await client.wait(await client.submit_bytes([("eicar.com", EICAR)], sid="eicar2"), timeout=30)
        assert again.cached_results > 0 and again.verdict == summary.verdict
        assert (summary.verdict, summary.errors) == ("malicious", 0)
        assert {"yara", "ruled", "characterize", "safelist"} <= {r.service for r in summary.files[0].results}
        for consumer in (names.ROOT_CONSUMER, names.CHILD_CONSUMER):
            with anyio.fail_after(10):
                while (info := await js.consumer_info(names.submit_stream, consumer)).num_ack_pending:
                    await anyio.sleep(0.02)
            assert info.num_pending == 0 and info.num_redelivered == 0, (consumer, info)
        rows = [("subject", "read by", "sent", "dead-lettered", "lost")]
        for subject, readers_of in readers.items():
            lettered = sum(letter.subject == subject for letter in letters)
            rows.append((subject.removeprefix(f"{prefix}.").replace(did, "<dispatcher>"), ", ".join(readers_of), str(sent[subject]), str(lettered),
                         str(sent[subject] * len(readers_of) - lettered)))
        write_table(os.environ.get("SLUICE_HOSTILE_TABLE"), "messages.md", rows,
                    "Also: a message of 8 MiB + 1 byte is refused by nats-py (MaxPayloadError) and by the server "
                    "from a raw socket (Maximum Payload Violation); a forged registry record with a regex that does "
                    "not compile, a registry value and a rules announcement that are not msgpack, and garbage in "
                    "the result cache and on the summary subject of the next submission: each ignored (with a logged "
                    "reason), every service still beating, the next file analysed by all of them and its verdict "
                    "delivered. A submission whose file is 9 bytes but declared as 1 ended with a bad_input error. "
                    "('ruled' is a test service with an update_config, so that rules announcements are read.)")
