"""`sluice dlq`: a poison message is kept with its reason, listed, shown, replayed (completing
once it is valid, coming back exactly once while it is not) and purged."""

from __future__ import annotations

import json

import anyio
import anyio.to_thread
import msgspec
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

import dispatcher.dispatcher
from bus.codec import BadMessage, decode, encode
from bus.connect import close, connect
from bus.exhausted import watch_exhausted
from bus.provision import provision
from bus.subjects import Names
from schemas.messages import DeadLetter, FileRef, MaxDeliveriesAdvisory, Submission, Task
from sluice.cli import main
from sluice.client import Client
from sluice.onebox import onebox
from svcs import Echo, make

pytestmark = pytest.mark.timeout(60)

GARBAGE = b"\xc1 not msgpack at all"


class Letters:
    """Dead letters as they arrive (a subscription, so tests wait on the event, not on time)."""

    def __init__(self) -> None:
        self.seen: list[DeadLetter] = []
        self.arrived = anyio.Event()

    async def on_msg(self, msg) -> None:
        self.seen.append(decode(msg.data, DeadLetter))
        self.arrived.set()

    async def next(self) -> DeadLetter:
        with anyio.fail_after(15):
            await self.arrived.wait()
        self.arrived = anyio.Event()
        return self.seen[-1]


async def watch_letters(client: Client, names: Names) -> Letters:
    letters = Letters()
    await client.js.subscribe(names.dead_letter(">"), cb=letters.on_msg, stream=names.dlq_stream,
                              ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
    return letters


async def cli(capsys: pytest.CaptureFixture[str], nats_url: str, prefix: str, *argv: str) -> tuple[int, str, str]:
    """`sluice --nats URL --prefix P dlq ...` as a user runs it (its own event loop, in a thread)."""
    code = await anyio.to_thread.run_sync(main, ["--nats", nats_url, "--prefix", prefix, "dlq", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listed(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


async def test_refused_submission_is_listed_shown_and_completes_when_replayed(nats_url, prefix, capsys, monkeypatch):
    def old_policy(sub: Submission) -> None:  # a dispatcher that refused what the current one takes
        raise BadMessage("metadata 'team' is not allowed here")

    async with onebox(nats_url, prefix, [make(Echo, "echo")]) as box, await Client.connect(nats_url, prefix) as client:
        letters = await watch_letters(client, box.names)
        monkeypatch.setattr(dispatcher.dispatcher, "check_submission", old_policy)
        sid = await client.submit_bytes([("note.txt", b"hello\n")], metadata={"team": "red"})
        dead = await letters.next()
        assert (dead.subject, dead.reason) == (box.names.submit_root, "metadata 'team' is not allowed here")

        code, out, _ = await cli(capsys, nats_url, prefix, "list", "--json")
        [row] = listed(out)
        assert code == 0
        assert (row["subject"], row["origin"], row["reason"], row["size"], row["replayable"]) == (
            box.names.submit_root, "dispatcher", dead.reason, len(dead.data), True)
        code, out, _ = await cli(capsys, nats_url, prefix, "show", str(row["seq"]), "--json")
        assert code == 0 and json.loads(out)["content"]["sid"] == sid  # the message itself, decoded

        monkeypatch.undo()  # the dispatcher now accepts it
        code, out, _ = await cli(capsys, nats_url, prefix, "replay", str(row["seq"]))
        assert code == 0 and f"replayed {row['seq']} on {box.names.submit_root}" in out
        summary = await client.wait(sid, timeout=20)
        assert summary.files[0].results[0].service == "echo"
        code, out, _ = await cli(capsys, nats_url, prefix, "list", "--json")
        assert listed(out) == []  # the replayed letter is gone


async def test_a_still_bad_message_comes_back_once_and_purge_empties(nats_url, prefix, capsys):
    async with onebox(nats_url, prefix, [make(Echo, "echo")]) as box, await Client.connect(nats_url, prefix) as client:
        letters = await watch_letters(client, box.names)
        await client.js.publish(box.names.submit_root, GARBAGE)
        first = await letters.next()
        assert first.data == GARBAGE and first.replays == 0 and first.reason.startswith("not a valid Submission")

        code, out, _ = await cli(capsys, nats_url, prefix, "replay", "--all")
        assert code == 0 and out.count("replayed") == 1
        again = await letters.next()
        assert (again.data, again.replays, again.reason) == (GARBAGE, 1, first.reason)
        # A valid submission after it completes: the dispatcher is past the bad one, which came back once.
        sid = await client.submit_bytes([("ok.txt", b"fine\n")])
        await client.wait(sid, timeout=20)
        code, out, _ = await cli(capsys, nats_url, prefix, "list", "--json")
        [row] = listed(out)
        assert row["replays"] == 1 and len(letters.seen) == 2

        code, out, _ = await cli(capsys, nats_url, prefix, "list")
        words = "".join(out.split())  # however the table wrapped
        assert "dispatcher" in words and "(replayed1×)" in words
        code, out, _ = await cli(capsys, nats_url, prefix, "purge")
        assert code == 0 and "purged 1 dead letter" in out
        code, out, _ = await cli(capsys, nats_url, prefix, "list")
        assert "no dead letters" in out


async def test_replay_refuses_truncated_and_unknown_letters(nats_url, prefix, capsys):
    async with onebox(nats_url, prefix, []) as box, await Client.connect(nats_url, prefix) as client:
        names = box.names
        truncated = DeadLetter(names.submit_root, "too big", b"x" * 10, 1.0, size=5_000_000)
        ack = await client.js.publish(names.dead_letter("dispatcher"), encode(truncated))
        code, _, err = await cli(capsys, nats_url, prefix, "replay", str(ack.seq), "999999")
        assert code == 1
        assert f"dead letter {ack.seq}: only 10 of its 5000000 bytes were kept" in err
        assert "no dead letter 999999" in err
        code, out, _ = await cli(capsys, nats_url, prefix, "list", "--json")
        assert [r["seq"] for r in listed(out)] == [ack.seq]  # a refused replay keeps its letter


async def test_a_task_its_consumer_gave_up_on_is_dead_lettered(nats_url, prefix, capsys):
    """A component that dies on a message never acknowledges it nor dead-letters it itself: the
    server's max-deliveries advisory does, through the dispatcher, with the message as it was."""
    async with onebox(nats_url, prefix, [make(Echo, "echo")]) as box, await Client.connect(nats_url, prefix) as client:
        names, js = box.names, client.js
        letters = await watch_letters(client, names)
        subject = names.task("CORE", "text/plain")
        await js.add_consumer(names.task_stream, ConsumerConfig(
            durable_name="svc-crashy", filter_subject=subject, ack_wait=0.3, max_deliver=2))
        crashy = await js.pull_subscribe_bind("svc-crashy", stream=names.task_stream)
        task = encode(Task("corr", "sid", FileRef("0" * 64, 1, "x", b"x"), "text/plain", "CORE", ["crashy"], 9e12,
                           names.reply("d1", "result")))
        await js.publish(subject, task)
        for delivery in (1, 2):  # taken, then "crashed" on: never acknowledged
            [msg] = await crashy.fetch(1, timeout=5)
            assert msg.metadata.num_delivered == delivery
        # The server notices on the next pull (an instance keeps pulling), and never delivers it again.
        with pytest.raises(TimeoutError):
            await crashy.fetch(1, timeout=1)
        dead = await letters.next()
        assert (dead.subject, dead.data, dead.size) == (subject, task, len(task))
        assert dead.reason.startswith("delivered 2 times to svc-crashy and never acknowledged")
        code, out, _ = await cli(capsys, nats_url, prefix, "list", "--json")
        [row] = listed(out)
        assert (row["origin"], row["subject"], row["replayable"]) == ("svc-crashy", subject, True)


async def test_a_submission_given_up_on_leaves_its_work_queue_for_the_dlq(nats_url, prefix):
    """On the work-queue submission stream an exhausted message would sit, undelivered, for good."""
    names = Names(prefix)
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        await provision(js, names)  # no dispatcher: the submission stays where it was published
        letters = Letters()
        await js.subscribe(names.dead_letter(">"), cb=letters.on_msg, stream=names.dlq_stream, ordered_consumer=True)
        data = encode(Submission("stuck", [FileRef("0" * 64, 1, "x", b"x")]))
        ack = await js.publish(names.submit_root, data)
        subs = await watch_exhausted(nc, js, names)
        # What the server sends when dispatch-root has delivered it max_deliver (5) times.
        advisory = MaxDeliveriesAdvisory(names.submit_stream, names.ROOT_CONSUMER, ack.seq, 5)
        await nc.publish(f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{names.submit_stream}.{names.ROOT_CONSUMER}",
                         msgspec.json.encode(advisory))
        dead = await letters.next()
        assert (dead.subject, dead.data) == (names.submit_root, data)
        assert dead.reason.startswith(f"delivered 5 times to {names.ROOT_CONSUMER}")
        with anyio.fail_after(5):  # removed just after the letter is safely kept
            while True:
                try:
                    await js.get_msg(names.submit_stream, ack.seq)
                except NotFoundError:
                    break
                await anyio.sleep(0.02)
        for sub in subs:
            await sub.unsubscribe()
    finally:
        await close(nc)
