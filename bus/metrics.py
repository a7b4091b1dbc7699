"""Every Prometheus metric a Sluice component exports, defined once, with the helpers that keep
instrumentation at the call sites to one line.

One process-wide registry (prometheus_client's default, which also carries the process_* and
python_* collectors): the one-box runner has the dispatcher and all services in one process, so
their series share one /metrics, told apart by the `service` label. Counters are the totals of
this process; Prometheus sums them across instances.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from schemas.messages import ErrorType, ServiceResult, Summary

# The *_created series (each counter's start time) double the output and nobody graphs them.
disable_created_metrics()

# From a cache hit's milliseconds to a slow service's minutes.
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, float("inf"))

# -- services (the runner): counted per task, exported by `ServiceTasks` at scrape time -----------
# `sluice_service_tasks_<key>` counters, by a `_Tally` field of the same name.
SERVICE_COUNTERS = {
    "received": "Tasks a service took on (targeted at it, within their deadline)",
    "completed": "Tasks that ended with a result",
    "failed": "Tasks that ended with an error result, or crashed the runner",
    "timed_out": "Tasks cut off at the service's timeout",
}

# -- the dispatcher -------------------------------------------------------------------------------
TASKS_EXPIRED = Counter("sluice_dispatcher_tasks_expired",
                        "Task attempts with no result by their deadline (an instance died or hung)", ["service"])
CACHE_HITS = Counter("sluice_dispatcher_cache_hits", "Results taken from the result cache", ["service"])
CACHE_MISSES = Counter("sluice_dispatcher_cache_misses", "Cache look-ups that found nothing (the service runs)", ["service"])
STAGE_SECONDS = Histogram("sluice_dispatcher_stage_seconds", "One file through one stage: cache, tasks, results",
                          ["stage"], buckets=SECONDS)
SUBMISSIONS_IN_FLIGHT = Gauge("sluice_dispatcher_submissions_in_flight", "Root submissions this dispatcher is analysing")
SUBMISSIONS_COMPLETED = Counter("sluice_dispatcher_submissions_completed", "Verdicts published", ["verdict"])
TREE_SECONDS = Histogram("sluice_dispatcher_tree_seconds", "Taking a submission to publishing its verdict (whole tree)",
                         buckets=SECONDS)
SUBMISSION_SECONDS = Histogram("sluice_submission_seconds", "Submitted to verdict, queueing included", buckets=SECONDS)

# -- queues (sampled from consumer info when /metrics is read) ------------------------------------
CONSUMER_PENDING = Gauge("sluice_consumer_pending_messages", "Messages not yet delivered to the consumer",
                         ["stream", "consumer"])
CONSUMER_ACK_PENDING = Gauge("sluice_consumer_ack_pending_messages", "Messages delivered and not yet acknowledged",
                             ["stream", "consumer"])


class _Tally:
    """One service's task counts and execute-time histogram, as plain numbers: a prometheus_client
    Counter/Gauge/Histogram update takes a lock each: six of them were 3.6 us a task, these
    0.6 us. Updated on the event loop only; read when /metrics is scraped (also on it)."""

    __slots__ = ("received", "completed", "failed", "timed_out", "in_progress", "seconds", "buckets")

    def __init__(self) -> None:
        self.received = self.completed = self.failed = self.timed_out = self.in_progress = 0
        self.seconds = 0.0
        self.buckets = [0] * len(SECONDS)  # tasks per bucket (not cumulative)

    def observe(self, seconds: float) -> None:
        self.seconds += seconds
        self.buckets[bisect.bisect_left(SECONDS, seconds)] += 1


class ServiceTasks(Collector):
    """The services' series, one `service` label each, from their tallies."""

    def __init__(self) -> None:
        self.tallies: dict[str, _Tally] = {}

    def tally(self, service: str) -> _Tally:
        found = self.tallies.get(service)
        if found is None:
            found = self.tallies[service] = _Tally()
        return found

    def collect(self) -> Iterator[Metric]:
        counters = {key: CounterMetricFamily(f"sluice_service_tasks_{key}", text, labels=["service"])
                    for key, text in SERVICE_COUNTERS.items()}
        in_progress = GaugeMetricFamily("sluice_service_tasks_in_progress", "Tasks being executed right now",
                                        labels=["service"])
        seconds = HistogramMetricFamily("sluice_service_execute_seconds", "One task: fetch, execute, store what it produced",
                                        labels=["service"])
        for service, tally in self.tallies.items():
            for key, family in counters.items():
                family.add_metric([service], getattr(tally, key))
            in_progress.add_metric([service], tally.in_progress)
            seconds.add_metric([service], [(floatToGoString(le), n) for le, n in zip(SECONDS, itertools.accumulate(tally.buckets))],
                               tally.seconds)
        yield from counters.values()
        yield in_progress
        yield seconds


SERVICE_TASKS = ServiceTasks()
REGISTRY.register(SERVICE_TASKS)


async def observe_task(service: str, work: Awaitable[ServiceResult]) -> ServiceResult:
    """Await one task's `work`, counting it received, then completed, timed out or failed, and timing it."""
    tally = SERVICE_TASKS.tally(service)
    tally.received += 1
    tally.in_progress += 1
    started = time.perf_counter()
    try:
        result = await work
    except Exception:
        tally.failed += 1
        raise
    finally:
        tally.observe(time.perf_counter() - started)
        tally.in_progress -= 1
    if result.error is None:
        tally.completed += 1
    elif result.error.type == ErrorType.TIMEOUT:
        tally.timed_out += 1
    else:
        tally.failed += 1
    return result


@functools.cache
def labelled(metric, value: str):
    """`metric.labels(value)`, looked up once per value (the dispatcher's per-file series)."""
    return metric.labels(value)


def cache_lookup(service: str, hit: bool) -> None:
    labelled(CACHE_HITS if hit else CACHE_MISSES, service).inc()


@contextmanager
def tree_in_flight() -> Iterator[None]:
    """A root submission held by this dispatcher; its duration counts only if it finished here
    (one handed back on a stop is finished by another dispatcher, which times it)."""
    SUBMISSIONS_IN_FLIGHT.inc()
    started = time.monotonic()
    try:
        yield
        TREE_SECONDS.observe(time.monotonic() - started)
    finally:
        SUBMISSIONS_IN_FLIGHT.dec()


def submission_completed(summary: Summary) -> None:
    labelled(SUBMISSIONS_COMPLETED, summary.verdict).inc()
    if summary.submitted_at and summary.completed_at:
        SUBMISSION_SECONDS.observe(max(0.0, summary.completed_at - summary.submitted_at))
