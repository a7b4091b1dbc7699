"""Every subject, stream, bucket and consumer name, derived from one prefix.

One prefix is one isolated Sluice on a shared NATS: tests use a fresh prefix each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.messages import Stage
from schemas.taxonomy import type_tokens

_PREFIX = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")


@dataclass(frozen=True)
class Names:
    prefix: str = "sluice"

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"prefix {self.prefix!r}: use lowercase letters, digits, '_' or '-' (≤ 31)")

    # -- subjects --------------------------------------------------------------------------
    @property
    def _roots(self) -> str:
        return f"{self.prefix}.submit.root"

    def submit_root_for(self, identity: str) -> str:
        """Where submitter `identity` publishes its submissions: a subject per identity, which
        the server lets only that identity publish to (bus.auth), so the dispatcher knows who
        submitted without believing a field, and serves each identity from its own queue. The
        default identity keeps the bare `submit.root` of wire 1.0, so clients written before
        identities existed (and any NATS client that follows docs/wire.md) still submit."""
        return self._roots if identity == self.DEFAULT_SUBMITTER else f"{self._roots}.{identity}"

    def submitter_of(self, subject: str) -> str:
        """The identity a root submission came from, read off the subject it was published on."""
        own = subject.removeprefix(f"{self._roots}.")
        return own if own != subject else self.DEFAULT_SUBMITTER

    @property
    def submit_root(self) -> str:
        """The default submitter identity's subject (`submitter`: what a client without auth uses)."""
        return self.submit_root_for(self.DEFAULT_SUBMITTER)

    @property
    def submit_roots(self) -> list[str]:
        """Every submitter's subject: the default identity's and one per other identity."""
        return [self._roots, f"{self._roots}.*"]

    @property
    def submit_child(self) -> str:
        return f"{self.prefix}.submit.child"

    def upload_notice(self, identity: str) -> str:
        """Where `identity` says that a large upload of its own has begun, so that a dispatcher can
        check it while it arrives (dispatcher.early); like its submission subject, its own alone."""
        return f"{self.prefix}.upload.{identity}"

    @property
    def upload_notices(self) -> str:
        return self.upload_notice("*")

    def task(self, stage: Stage | str, file_type: str) -> str:
        return f"{self.prefix}.task.{Stage(stage).value}.{type_tokens(file_type)}"

    def task_filter(self, stage: Stage | str, file_type: str | None = None) -> str:
        """A service consumer's filter: one type, or every type of the stage."""
        tail = type_tokens(file_type) if file_type else ">"
        return f"{self.prefix}.task.{Stage(stage).value}.{tail}"

    def reply(self, dispatcher_id: str, kind: str) -> str:
        return f"{self.prefix}.reply.{dispatcher_id}.{kind}"

    def result_reply(self, reply_to: str, service: str) -> str:
        """Where `service` answers a task: the task's reply subject plus its own name, so the
        server can allow each service to publish only its own results (bus.auth)."""
        return f"{reply_to}.{service}"

    def replies(self, dispatcher_id: str) -> str:
        return f"{self.prefix}.reply.{dispatcher_id}.>"

    def summary(self, sid: str) -> str:
        return f"{self.prefix}.summary.{sid}"

    def alert(self, sid: str) -> str:
        return f"{self.prefix}.alert.{sid}"

    @property
    def summaries(self) -> str:
        return f"{self.prefix}.summary.*"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alert.*"

    def dead_letter(self, origin: str) -> str:
        return f"{self.prefix}.dlq.{origin}"

    # -- streams, consumers, buckets -------------------------------------------------------
    def stream(self, kind: str) -> str:
        return f"{self.prefix.upper().replace('-', '_')}_{kind}"

    @property
    def submit_stream(self) -> str:
        return self.stream("SUBMIT")

    @property
    def task_stream(self) -> str:
        return self.stream("TASKS")

    @property
    def reply_stream(self) -> str:
        return self.stream("REPLIES")

    @property
    def summary_stream(self) -> str:
        return self.stream("SUMMARIES")

    @property
    def dlq_stream(self) -> str:
        return self.stream("DLQ")

    def service_consumer(self, service: str) -> str:
        return f"svc-{service}"

    def dispatcher_consumer(self, dispatcher_id: str) -> str:
        return f"dispatcher-{dispatcher_id}"

    DEFAULT_SUBMITTER = "submitter"
    ROOT_CONSUMER = "dispatch-root"  # the default submitter's queue, named as in wire 1.0

    def root_consumer(self, identity: str) -> str:
        """The dispatchers' shared consumer of one submitter identity's queue."""
        return self.ROOT_CONSUMER if identity == self.DEFAULT_SUBMITTER else f"{self.ROOT_CONSUMER}-{identity}"

    def queue_identity(self, consumer: str) -> str | None:
        """The submitter identity whose queue `consumer` is; None if it is no submitter queue."""
        if consumer == self.ROOT_CONSUMER:
            return self.DEFAULT_SUBMITTER
        head, dash, identity = consumer.partition(f"{self.ROOT_CONSUMER}-")
        return identity if (dash and not head and identity) else None

    CHILD_CONSUMER = "dispatch-child"

    @property
    def cache_bucket(self) -> str:
        return f"{self.prefix}-cache"

    @property
    def registry_bucket(self) -> str:
        return f"{self.prefix}-services"

    @property
    def approvals_bucket(self) -> str:
        """KV: service name -> what the operator approved it to be (schemas.messages.ApprovedService)."""
        return f"{self.prefix}-approved"

    @property
    def quota_bucket(self) -> str:
        """KV: what each submitter identity used per window (`<quota>.<identity>.<window>`), shared by all dispatchers."""
        return f"{self.prefix}-quota"

    @property
    def file_bucket(self) -> str:
        return f"{self.prefix}-files"

    @property
    def safelist_bucket(self) -> str:
        """KV: sha256 -> why it is known good (the safelist service reads it)."""
        return f"{self.prefix}-safelist"

    @property
    def rules_bucket(self) -> str:
        """KV: service name -> the current rule set's version (its object in `ruleset_store`)."""
        return f"{self.prefix}-rules"

    @property
    def ruleset_store(self) -> str:
        """Object store: each rule set once, named `<service>/<version>`."""
        return f"{self.prefix}-rulesets"

    # -- the web workspace (sluice.web, `sluice user`) -------------------------------------
    @property
    def accounts_bucket(self) -> str:
        """KV: `user.<name>` -> User, `key.<id>` -> ApiKey."""
        return f"{self.prefix}-accounts"

    @property
    def sessions_bucket(self) -> str:
        """KV: SHA-256 of a session token -> Session (the bucket's TTL ends idle sessions)."""
        return f"{self.prefix}-sessions"

    @property
    def triage_bucket(self) -> str:
        """KV: submission id -> Triage of its alert."""
        return f"{self.prefix}-triage"

    @property
    def ratelimit_bucket(self) -> str:
        """KV: a hash of a client address or an account -> its recent failed sign-ins (sluice.web.ratelimit)."""
        return f"{self.prefix}-ratelimit"

    @property
    def pending_bucket(self) -> str:
        """KV: submission id -> who submitted it through a web front, until it expires (sluice.web.pending)."""
        return f"{self.prefix}-pending"

    @property
    def audit_stream(self) -> str:
        return self.stream("AUDIT")

    def audit(self, action: str) -> str:
        return f"{self.prefix}.audit.{action}"
