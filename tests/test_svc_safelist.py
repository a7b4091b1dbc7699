"""The safelist: hash files, the KV store helpers, the service alone, and the filter in a mesh."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio
import pytest

from dispatcher.directory import ServiceDirectory
from schemas.messages import ServiceRecord, Stage, SubmissionParams
from services.safelist import store
from services.safelist.store import HashFileError, parse_hash_file
from services.sdk.harness import run_service_once, run_service_once_async
from services.sdk.loader import load_service
from sluice.client import Client
from sluice.onebox import onebox
from svcs import Echo, make

pytestmark = pytest.mark.timeout(90)

TOOL = b"vetted internal tool, build 1.2.3\n"
SHA256 = hashlib.sha256(TOOL).hexdigest()
SHA1 = hashlib.sha1(TOOL).hexdigest()
MD5 = hashlib.md5(TOOL).hexdigest()
OTHER = b"something nobody vouched for\n"


# -- hash files -------------------------------------------------------------------------------

def test_hash_file_lines_with_and_without_reasons():
    text = (
        f"{SHA256.upper()}  Windows calc.exe, 10.0.19041\n"
        f"{MD5},vendor installer\n"
        f"{SHA1}\n"
    )
    assert parse_hash_file(text) == {SHA256: "Windows calc.exe, 10.0.19041", MD5: "vendor installer", SHA1: ""}


def test_hash_file_comments_and_blank_lines_are_skipped():
    text = f"# exported 2024-05-01\n\n   # indented comment\n{SHA256} ok\n\n"
    assert parse_hash_file(text) == {SHA256: "ok"}


def test_hash_file_bad_lines_are_all_reported_with_their_numbers():
    text = f"{SHA256} good\nnot-a-hash reason\n{SHA256[:-1]}\n# fine\n{'zz' * 32}\n,{MD5}\n"
    with pytest.raises(HashFileError) as caught:
        parse_hash_file(text)
    assert [number for number, _ in caught.value.problems] == [2, 3, 5, 6]
    assert "line 2:" in str(caught.value) and "'not-a-hash'" in str(caught.value)


# -- the service without NATS (config hashes) ---------------------------------------------------

def safelist(data: bytes, hashes: dict[str, str], **kwargs):
    run = run_service_once(load_service("safelist", {"hashes": hashes}), data, file_type="text/plain", **kwargs)
    assert run.result.error is None
    assert not [s for s in run.result.sections if s.title == "Result warnings"]
    return run


def test_config_listed_file_is_scored_negative_and_dropped():
    run = safelist(TOOL, {SHA256: "internal build"})
    section = run.section("Safelisted file")
    assert section.heuristic.name == "Known good" and section.heuristic.score == -1000
    assert (run.result.score, run.result.drop) == (-1000, True)
    assert '"reason": "internal build"' in section.body and '"hash type": "sha256"' in section.body


def test_md5_and_sha1_keys_match_too():
    assert safelist(TOOL, {MD5.upper(): "by md5"}).result.drop
    run = safelist(TOOL, {SHA1: ""})
    assert run.result.drop and '"hash type": "sha1"' in run.section("Safelisted file").body


def test_unlisted_file_gets_nothing():
    run = safelist(OTHER, {SHA256: "internal build"})
    assert (run.result.sections, run.result.score, run.result.drop) == ([], 0, False)


def test_bad_config_hash_fails_at_load():
    with pytest.raises(ValueError, match="not an md5, sha1 or sha256"):
        load_service("safelist", {"hashes": {"abc": "too short"}})


def at_depth(work: Path, depth: int, params: dict[str, object]):
    service = load_service("safelist", {"hashes": {SHA256: "internal build"}})
    return run_service_once(service, TOOL, name="tool.txt", file_type="text/plain", depth=depth, service_params=params).result


def test_children_are_not_safelisted_unless_asked(tmp_path):
    assert at_depth(tmp_path, 1, {}).drop is False
    assert at_depth(tmp_path, 1, {"apply_to_children": True}).drop is True
    assert at_depth(tmp_path, 0, {}).drop is True


# -- the KV bucket ------------------------------------------------------------------------------

async def test_store_helpers_and_service_against_the_bucket(nats_url, prefix):
    async with await Client.connect(nats_url, prefix) as client:  # provisions the prefix's buckets
        kv = await client.js.key_value(client.names.safelist_bucket)
        assert await store.entries(kv) == {}
        await store.add(kv, {MD5.upper(): "listed by md5", SHA256: ""})
        assert await store.entries(kv) == {MD5: "listed by md5", SHA256: ""}
        assert await store.lookup(kv, [SHA1, MD5]) == (MD5, "listed by md5")
        assert await store.remove(kv, [SHA256, SHA1]) == [SHA256]  # SHA1 was never listed
        assert await store.entries(kv) == {MD5: "listed by md5"}

        service = load_service("safelist")
        await service.attach(client.js, client.names)
        run = await run_service_once_async(service, TOOL, file_type="text/plain")
        assert run.result.drop and '"listed in": "safelist bucket"' in run.section("Safelisted file").body
        await service.mirror.loaded.wait()
        assert service.mirror.usable
        await store.remove(kv, [MD5])  # checked in the bucket at once, whether or not the mirror has it yet
        run = await run_service_once_async(service, TOOL, file_type="text/plain")
        assert (run.result.sections, run.result.drop) == ([], False)
        assert await store.entries(kv) == {}  # every last value a deletion: still read to the end
        with pytest.raises(ValueError):
            await store.add(kv, {"xyz": "not a hash"})


async def test_the_mirror_follows_the_bucket_and_a_stale_entry_drops_nothing(nats_url, prefix):
    async with await Client.connect(nats_url, prefix) as client:
        kv = await client.js.key_value(client.names.safelist_bucket)
        await store.add(kv, {SHA1: "by sha1"})
        mirror = await store.Mirror(client.names.safelist_bucket).start(client.js)
        with anyio.fail_after(10):
            await mirror.loaded.wait()
        assert mirror.entries == {SHA1: "by sha1"}
        await store.add(kv, {MD5: "by md5"})
        await store.remove(kv, [SHA1])
        with anyio.fail_after(10):
            while mirror.entries != {MD5: "by md5"}:
                await anyio.sleep(0.01)  # the mirror's own consumer delivers; nothing else to wait on
        await mirror.stop()

        service = load_service("safelist")
        await service.attach(client.js, client.names)
        await service.mirror.loaded.wait()
        service.mirror.entries[SHA256] = "removed, and the mirror has not seen it yet"
        run = await run_service_once_async(service, TOOL, file_type="text/plain")
        assert run.section("Safelisted file") and '"hash": "%s"' % MD5 in run.section("Safelisted file").body
        del service.mirror.entries[MD5]
        run = await run_service_once_async(service, TOOL, file_type="text/plain")
        assert (run.result.sections, run.result.drop) == ([], False)  # SHA256 is not in the bucket


async def test_a_list_larger_than_the_mirror_is_read_per_file(nats_url, prefix):
    async with await Client.connect(nats_url, prefix) as client:
        kv = await client.js.key_value(client.names.safelist_bucket)
        await store.add(kv, {SHA1: "by sha1", hashlib.sha1(OTHER).hexdigest(): ""})
        assert (await store.Mirror(client.names.safelist_bucket, limit=1).start(client.js)).overflowed
        growing = await store.Mirror(client.names.safelist_bucket, limit=2).start(client.js)
        with anyio.fail_after(10):
            await growing.loaded.wait()
        assert growing.usable
        await store.add(kv, {MD5: "one too many"})
        with anyio.fail_after(10):
            while not growing.overflowed:
                await anyio.sleep(0.01)  # the mirror's own consumer delivers; nothing else to wait on
        assert not growing.usable and growing.entries == {}
        await growing.stop()
        service = load_service("safelist")
        await service.attach(client.js, client.names)
        service.mirror = await store.Mirror(client.names.safelist_bucket, limit=1).start(client.js)
        run = await run_service_once_async(service, TOOL, file_type="text/plain")
        assert run.result.drop and '"listed in": "safelist bucket"' in run.section("Safelisted file").body


async def test_mesh_drops_a_safelisted_root_before_core_and_unlisting_takes_effect(nats_url, prefix):
    echo = make(Echo, "echo")
    async with onebox(nats_url, prefix, ["safelist", echo]) as box, await Client.connect(nats_url, prefix) as client:
        kv = await client.js.key_value(box.names.safelist_bucket)
        await store.add(kv, {SHA256: "internal build"})
        summary = await client.wait(await client.submit_bytes([("tool.txt", TOOL)]), timeout=60)
        [node] = summary.files
        assert node.dropped and node.score == -1000 and summary.score == -1000
        assert [r.service for r in node.results] == ["safelist"]
        assert node.results[0].sections[0].title == "Safelisted file"
        assert echo.executed == []  # the CORE stage never ran

        assert await store.remove(kv, [SHA256]) == [SHA256]
        # No ignore_cache: the safelist's results are never cached, so the removal shows at once.
        summary = await client.wait(await client.submit_bytes([("tool.txt", TOOL)]), timeout=60)
        [node] = summary.files
        assert not node.dropped and node.score == 100
        assert [(r.service, r.score, len(r.sections)) for r in node.results] == [("safelist", 0, 0), ("echo", 100, 1)]
        assert echo.executed == [SHA256]


def test_dispatcher_sends_children_to_the_safelist_only_when_asked():
    directory = ServiceDirectory(registry=None)
    directory.services = {
        "safelist": ServiceRecord("safelist", "1", Stage.FILTER, ".*", "", 10, "svc-safelist"),
        "echo": ServiceRecord("echo", "1", Stage.CORE, ".*", "", 10, "svc-echo"),
    }
    plain, asked = SubmissionParams(), SubmissionParams(service_params={"safelist": {"apply_to_children": True}})
    assert Stage.FILTER in directory.plan("text/plain", plain, depth=0)[0]
    assert Stage.FILTER not in directory.plan("text/plain", plain, depth=1)[0]
    assert Stage.FILTER not in directory.plan("text/plain", SubmissionParams(deep_scan=True), depth=1)[0]
    assert [r.name for r in directory.plan("text/plain", asked, depth=2)[0][Stage.FILTER]] == ["safelist"]
