"""How much a Sluice prefix may hold: each stream's `max_bytes` and the account's JetStream limits.

Operator settings, read from the environment when provisioning (`sluice provision`, which
`sluice up` runs) and when writing the server's authorization (`sluice auth init`, and the
one-box's own): a size is bytes or a number with K, M, G or T (powers of 1024), 0 means no
bound.

    SLUICE_MAX_BYTES_SUBMIT, _TASKS, _REPLIES, _DLQ   queues (a full one refuses new messages)
    SLUICE_MAX_BYTES_FILES, _RULESETS                  object stores (a full one refuses uploads)
    SLUICE_MAX_BYTES_CACHE, _KV                        the result cache; each small bucket
    SLUICE_ACCOUNT_MAX_FILE, _MAX_MEM                  the account's file and memory storage
    SLUICE_ACCOUNT_MAX_STREAMS, _MAX_CONSUMERS         the account's streams and consumers
    SLUICE_LIMIT_<FIELD>                               OperatorLimits: the dispatchers' maximums and
                                                       quotas; provisioning makes trees_per_submitter
                                                       each submitter queue's max_ack_pending

Why both: a queue's or bucket's `max_bytes` keeps it from filling the storage the others need
(a submitter's flood fills the submission queue, which then refuses more, instead of taking the
file store's room; a flood of uploads fills the file store, not the queues); the account limits
keep the whole of Sluice inside what the operator gave it on a shared server. nats-server
*reserves* each stream's `max_bytes` against the account's and the server's storage when the
stream is made ("insufficient storage resources" when they do not fit), and against an
account's limit once per replica (an R3 stream reserves three times its size; measured on a
3-node loopback cluster). An account must fit the server: a server with less storage than its
accounts' limits refuses to start, so the one-box lowers the account's file storage to half the
free disk of its store.

The defaults (STREAM_DEFAULTS) are what one prefix reserves in the default account (32 GiB of
file storage, one copy): the queues 2.75 GiB (submit and tasks 1 GiB each, replies 512 MiB,
dead letters 256 MiB); the file store 16 GiB, half the account, since file bytes are nearly
all of what Sluice stores (a week of uploads at its 7-day TTL, about 2.3 GiB a day); the result
cache 1 GiB (results are a few KiB: hundreds of thousands of entries within its 2-day TTL);
the rule-set store 1 GiB (a few versions of large signature sets); each of the five small KV
buckets (services, approvals, safelist, rules, quota) 64 MiB, far more than their records
need. In all 21.1 GiB, two thirds of the account: the rest is for what has no size of its own
(the summaries, kept 7 days; the web front's stores) and for raising a size later. With less
storage per copy (`account_file / replicas`: a one-box on a small disk, an R3 cluster) every
default shrinks in proportion (at least 1 MiB), so one prefix still fits its account with the
same room. A setting is taken as given. A server without account limits (no `--auth`, nobody
set the account's storage) has no account to fit, and such servers are where several prefixes
share one store (development, tests, benchmarks): there the buckets stay unbounded unless set,
since 21 GiB a prefix would refuse the third prefix on a 64 GiB disk; the queues keep theirs.

Applied when a stream is made. A queue is updated to its size each time provisioning runs, but
an existing bucket keeps its size unless the operator sets one (SLUICE_MAX_BYTES_<STORE>):
nats-py's bucket creation, which every component of the previous release (de1b7dc) runs at
start, refuses a bucket whose stream exists with another `max_bytes`, and that release made
its buckets unbounded. Resizing them by default would stop its components in a rolling
upgrade; the operator sizes them with the setting once the previous release is gone
(docs/wire.md, "Upgrading a deployment"). Shrinking a bucket below what it holds drops
nothing (buckets discard new): it refuses new writes until its TTL ages enough out.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec

from schemas.limits import OperatorLimits

LIMIT_ENV = "SLUICE_LIMIT_"  # SLUICE_LIMIT_MAX_DEPTH=3, SLUICE_LIMIT_TREES_PER_SUBMITTER=8, ...
MAX_BYTES_ENV = "SLUICE_MAX_BYTES_"
ACCOUNT_ENV = "SLUICE_ACCOUNT_"
KIB = 1024
MIB = KIB**2
GIB = KIB**3

# One prefix's reservation in the default account, 21.1 GiB of 32 (the module's docstring says why).
BUCKETS = ("FILES", "RULESETS", "CACHE", "KV")  # unbounded by default in an account without limits
STREAM_DEFAULTS = {
    "SUBMIT": 1 * GIB, "TASKS": 1 * GIB, "REPLIES": 512 * MIB, "DLQ": 256 * MIB,
    "FILES": 16 * GIB, "RULESETS": 1 * GIB, "CACHE": 1 * GIB, "KV": 64 * MIB,
}
ACCOUNT_DEFAULTS = {"MAX_FILE": 32 * GIB, "MAX_MEM": 256 * MIB, "MAX_STREAMS": 1000, "MAX_CONSUMERS": 20_000}
_SIZE = re.compile(r"\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def parse_size(name: str, text: str) -> int:
    """`text` ("64M", "1G", "1048576", "0") as bytes; a clear error naming the setting otherwise."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"${name}={text!r}: expected bytes or a number with K, M, G or T (e.g. 512M); 0 for no bound")
    return int(match[1]) * KIB ** " KMGT".index(match[2].upper() or " ")


def _setting(environ: Mapping[str, str], name: str, default: int) -> int:
    return parse_size(name, environ[name]) if name in environ else default


def stream_max_bytes(store: str, environ: Mapping[str, str] = os.environ, account_file: int = -1,
                     replicas: int = 1) -> int:
    """`max_bytes` for one of STREAM_DEFAULTS' stores, as nats-py takes it (-1: no bound).

    `account_file`: the account's file storage (-1: no limit, and then no bucket is bounded by
    default); `replicas`: the stream's copies, each reserved against it. The defaults are sized
    for the default account at one copy; with less storage per copy (the one-box's account on a
    small disk, an R3 cluster) a default is scaled down in proportion, so that one prefix's
    streams still fit. A setting is taken as given."""
    given = operator_max_bytes(store, environ)
    if given is not None:
        return given
    if store in BUCKETS and account_file <= 0:
        return -1
    default, per_copy = STREAM_DEFAULTS[store], account_file // replicas
    if 0 < per_copy < ACCOUNT_DEFAULTS["MAX_FILE"]:
        default = max(MIB, default * per_copy // ACCOUNT_DEFAULTS["MAX_FILE"])
    return default


def operator_max_bytes(store: str, environ: Mapping[str, str] = os.environ) -> int | None:
    """The operator's own size for `store` as nats-py takes it (-1: no bound), None when not set.
    An existing bucket is resized to it only when set (the module's docstring says why)."""
    name = MAX_BYTES_ENV + store
    return (parse_size(name, environ[name]) or -1) if name in environ else None


@dataclass(frozen=True)
class AccountLimits:
    """The Sluice account's JetStream limits (nats-server's `jetstream {}` block of an account)."""

    max_file: int
    max_mem: int
    max_streams: int
    max_consumers: int

    def config(self) -> str:
        """The block for the account in the server config; an unbounded limit is -1."""
        values = {field: getattr(self, field) or -1 for field in ("max_file", "max_mem", "max_streams", "max_consumers")}
        return "jetstream: {" + ", ".join(f"{key}: {value}" for key, value in values.items()) + "}"


def account_limits(environ: Mapping[str, str] = os.environ, store: Path | None = None) -> AccountLimits:
    """The operator's account limits; with `store` (the one-box's own server), file storage at most
    half the free disk there unless set explicitly, since a server cannot grant more than it has."""
    given = {key: _setting(environ, ACCOUNT_ENV + key, default) for key, default in ACCOUNT_DEFAULTS.items()}
    if store is not None and ACCOUNT_ENV + "MAX_FILE" not in environ:
        store.mkdir(parents=True, exist_ok=True)
        given["MAX_FILE"] = min(given["MAX_FILE"], shutil.disk_usage(store).free // 2)
    return AccountLimits(given["MAX_FILE"], given["MAX_MEM"], given["MAX_STREAMS"], given["MAX_CONSUMERS"])


def operator_limits(environ: Mapping[str, str] = os.environ) -> OperatorLimits:
    """The operator's maximums and quotas (the dispatcher's, and the in-flight quota provisioning
    sets on each submitter's queue): the defaults, each overridden by $SLUICE_LIMIT_<FIELD> if set."""
    given = {field: environ[LIMIT_ENV + field.upper()] for field in OperatorLimits.__struct_fields__
             if LIMIT_ENV + field.upper() in environ}
    try:
        return msgspec.convert(given, OperatorLimits, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(f"${LIMIT_ENV}...: {exc}") from None
