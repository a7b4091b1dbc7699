"""Malformed messages on every subject Sluice reads: each one dead-lettered with its reason, nothing stuck."""

from __future__ import annotations

import anyio
import pytest
from nats.js.api import DeliverPolicy

from bus.codec import decode, encode
from schemas.messages import ChildSubmission, DeadLetter, FileRef, Submission, SubmissionParams, Task
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
