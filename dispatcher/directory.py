"""Which services are alive, and which of them a file of a given type goes to, stage by stage.

Instances announce themselves in the registry bucket every couple of seconds; a service counts
only while one of its instances is fresh, because a task published to a service that nobody
consumes would only time out (and on the interest stream, one no consumer matches is dropped).

A heartbeat only says *alive*. What a service is (its stage, accepts/rejects, kinds, timeout,
whether it runs by default) comes from the operator's approval in the approvals bucket
(`ApprovedService`, written by admin only); a live service without one is not planned at all.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable

import anyio
from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue

import msgspec

from bus.codec import BadMessage, decode
from schemas.samples import kind_of_type
from schemas.messages import STAGES, ApprovedService, ServiceRecord, Stage, SubmissionParams

log = logging.getLogger("sluice.dispatcher")

STALE_AFTER = 8.0  # seconds an instance's heartbeat may lag the freshest one before it counts as down
REGISTRY_OUTAGE = 60.0  # seconds the whole registry may go unwritten (an election) before every instance is down


def as_approved(record: ServiceRecord, approved: ApprovedService) -> ServiceRecord:
    """A live service's record with what it is taken from its approval, whatever it announced."""
    return msgspec.structs.replace(record, stage=approved.stage, accepts=approved.accepts, rejects=approved.rejects,
                                   kinds=list(approved.kinds), timeout=approved.timeout, enabled=approved.enabled)


class ServiceDirectory:
    """`list_keys` lists the registry's keys; the dispatcher gives `bus.kv.kv_keys`, which unlike
    the default (nats-py's `KeyValue.keys()`) never comes back short while instances heartbeat.

    With `approvals` (the dispatcher's case: the approvals bucket and its key lister), `services`
    holds only approved live services, as approved; without (a status page), every live one as announced."""

    def __init__(self, registry: KeyValue, list_keys: Callable[[], Awaitable[list[str]]] | None = None,
                 approvals: tuple[KeyValue, Callable[[], Awaitable[list[str]]]] | None = None) -> None:
        self._registry = registry
        self._list_keys = list_keys
        self._approvals = approvals
        self.approved: dict[str, ApprovedService] = {}
        self._unapproved: list[str] = []  # said once per change, not every second
        self.services: dict[str, ServiceRecord] = {}
        self.changed = anyio.Event()
        self._patterns: dict[str, tuple[re.Pattern[str], re.Pattern[str] | None]] = {}
        self._plans: dict[tuple, tuple[dict[Stage, list[ServiceRecord]], list[str]]] = {}
        self._plans_for: dict[str, ServiceRecord] | None = None

    async def refresh(self) -> None:
        try:
            keys = await (self._list_keys or self._registry.keys)()
        except NoKeysError:
            keys = []
        records: list[ServiceRecord] = []
        for key in keys:
            try:
                entry = await self._registry.get(key)
            except KeyNotFoundError:  # an instance that stopped (deleted its key) since the listing
                continue
            if not entry or not entry.value:
                continue
            try:
                record = decode(entry.value, ServiceRecord)
                self._compiled(record)  # a record whose regexes do not compile would fail every plan
            except (BadMessage, re.error) as exc:
                log.warning("registry entry %s ignored: %s", key, exc)
                continue
            if not key.startswith(f"{record.name}."):
                # Keys are <service>.<instance>, and under auth a service may write only its own:
                # a record in another's key would let one service pose as another.
                log.warning("registry entry %s ignored: it claims to be %r", key, record.name)
                continue
            records.append(record)
        # Staleness against the freshest heartbeat, not only the clock: while the registry cannot
        # be written (its stream electing a leader: 5-10 s measured on a loaded cluster), every
        # heartbeat ages together, and judging by the clock alone emptied the directory, so the
        # files planned then went without their services, silently. One instance falling behind
        # the others is still down after STALE_AFTER; all of them after REGISTRY_OUTAGE.
        now = time.time()
        freshest = min(max((r.heartbeat for r in records), default=now), now)  # a host whose clock runs ahead sets no bar
        seen: dict[str, ServiceRecord] = {}
        for record in records:
            if freshest - record.heartbeat > STALE_AFTER or now - record.heartbeat > REGISTRY_OUTAGE:
                continue
            if record.name in seen:
                seen[record.name].instances += 1
                seen[record.name].heartbeat = max(seen[record.name].heartbeat, record.heartbeat)
            else:
                seen[record.name] = record
        if self._approvals is not None:
            self.approved = await self._read_approvals()
            unapproved = sorted(seen.keys() - self.approved.keys())
            if unapproved and unapproved != self._unapproved:
                log.warning("alive but not approved by the operator, so not planned: %s", ", ".join(unapproved))
            self._unapproved = unapproved
            seen = {name: as_approved(record, self.approved[name]) for name, record in seen.items() if name in self.approved}
        if seen.keys() != self.services.keys():
            log.info("services alive: %s", ", ".join(sorted(seen)) or "none")
        self.services = seen
        self.changed.set()
        self.changed = anyio.Event()

    async def _read_approvals(self) -> dict[str, ApprovedService]:
        kv, list_keys = self._approvals
        approved: dict[str, ApprovedService] = {}
        for key in await list_keys():
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:  # revoked since the listing
                continue
            if not entry or not entry.value:
                continue
            try:
                record = decode(entry.value, ApprovedService)
                re.compile(record.accepts), re.compile(record.rejects or "")
            except (BadMessage, re.error) as exc:
                log.warning("approval %s ignored: %s", key, exc)
                continue
            if record.name == key:
                approved[key] = record
        return approved

    async def run(self, interval: float = 1.0) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - NATS may be restarting
                log.warning("registry refresh failed: %s", exc)
            await anyio.sleep(interval)

    async def wait_for(self, names: set[str], timeout: float = 10.0) -> None:
        with anyio.fail_after(timeout):
            while not names <= self.services.keys():
                await self.refresh()
                if not names <= self.services.keys():
                    await anyio.sleep(0.05)

    def _compiled(self, record: ServiceRecord) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
        key = f"{record.accepts}\0{record.rejects}"
        if key not in self._patterns:
            self._patterns[key] = (re.compile(record.accepts), re.compile(record.rejects) if record.rejects else None)
        return self._patterns[key]

    def _accepts(self, record: ServiceRecord, file_type: str) -> bool:
        accepts, rejects = self._compiled(record)
        return kind_of_type(file_type) in record.kinds and bool(accepts.match(file_type)) and not (rejects and rejects.match(file_type))

    def plan(self, file_type: str, params: SubmissionParams, depth: int) -> tuple[dict[Stage, list[ServiceRecord]], list[str]]:
        """Services per stage for this file, and the selected services that are not running.

        Remembered until the next refresh by what it depends on (most files share a handful of
        plans); the caller must not change what it gets."""
        child_safelist = depth > 0 and params.service_params.get("safelist", {}).get("apply_to_children")
        key = (file_type, tuple(params.services), tuple(params.exclude), depth > 0, bool(child_safelist))
        if self._plans_for is not self.services:  # a new set of services (each refresh makes one)
            self._plans, self._plans_for = {}, self.services
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(file_type, params, depth)
        return plan

    def _plan(self, file_type: str, params: SubmissionParams, depth: int) -> tuple[dict[Stage, list[ServiceRecord]], list[str]]:
        selected = set(params.services)
        missing = sorted(selected - self.services.keys())
        schedule: dict[Stage, list[ServiceRecord]] = {stage: [] for stage in STAGES}
        for record in self.services.values():
            if record.name not in selected and (selected or not record.enabled):
                continue
            if record.name in params.exclude or not self._accepts(record, file_type):
                continue
            # As Assemblyline: the safelist filter is for what the user submitted, not what was
            # inside it, unless the submission asks (safelisting a child skips its analysis).
            if record.name == "safelist" and depth > 0 and not params.service_params.get("safelist", {}).get("apply_to_children"):
                continue
            schedule[record.stage].append(record)
        return {stage: sorted(recs, key=lambda r: r.name) for stage, recs in schedule.items() if recs}, missing
