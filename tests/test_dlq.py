"""`sluice dlq`: a poison message is kept with its reason, listed, shown, replayed (completing
once it is valid, coming back exactly once while it is not) and purged."""

from __future__ import annotations

import json

import anyio
import anyio.to_thread
import pytest
from nats.js.api import DeliverPolicy

import dispatcher.dispatcher
from bus.codec import BadMessage, decode, encode
from bus.subjects import Names
from schemas.messages import DeadLetter, Submission
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
