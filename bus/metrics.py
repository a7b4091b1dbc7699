"""Every Prometheus metric a Sluice component exports, defined once, with the helpers that keep
instrumentation at the call sites to one line.

One process-wide registry (prometheus_client's default, which also carries the process_* and
python_* collectors): the one-box runner has the dispatcher and all services in one process, so
their series share one /metrics, told apart by the `service` label. Counters are the totals of
this process; Prometheus sums them across instances.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from schemas.messages import ErrorType, ServiceResult, Summary

# The *_created series (each counter's start time) double the output and nobody graphs them.
disable_created_metrics()

# From a cache hit's milliseconds to a slow service's minutes.
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, float("inf"))

# -- services (the runner) ------------------------------------------------------------------------
TASKS_RECEIVED = Counter("sluice_service_tasks_received",
                         "Tasks a service took on (targeted at it, within their deadline)", ["service"])
TASKS_COMPLETED = Counter("sluice_service_tasks_completed", "Tasks that ended with a result", ["service"])
TASKS_FAILED = Counter("sluice_service_tasks_failed",
                       "Tasks that ended with an error result, or crashed the runner", ["service"])
TASKS_TIMED_OUT = Counter("sluice_service_tasks_timed_out", "Tasks cut off at the service's timeout", ["service"])
TASKS_IN_PROGRESS = Gauge("sluice_service_tasks_in_progress", "Tasks being executed right now", ["service"])
EXECUTE_SECONDS = Histogram("sluice_service_execute_seconds", "One task: fetch, execute, store what it produced",
                            ["service"], buckets=SECONDS)

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


@functools.cache
def _service_series(service: str) -> tuple:
    """The service's labelled children, looked up once: `labels()` costs more than the increment."""
    return tuple(m.labels(service) for m in (TASKS_RECEIVED, TASKS_IN_PROGRESS, EXECUTE_SECONDS,
                                              TASKS_COMPLETED, TASKS_TIMED_OUT, TASKS_FAILED))


async def observe_task(service: str, work: Awaitable[ServiceResult]) -> ServiceResult:
    """Await one task's `work`, counting it received, then completed, timed out or failed, and timing it."""
    received, in_progress, seconds, completed, timed_out, failed = _service_series(service)
    received.inc()
    in_progress.inc()
    started = time.perf_counter()
    try:
        result = await work
    except Exception:
        failed.inc()
        raise
    finally:
        seconds.observe(time.perf_counter() - started)
        in_progress.dec()
    if result.error is None:
        completed.inc()
    else:
        (timed_out if result.error.type == ErrorType.TIMEOUT else failed).inc()
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
