"""Scoring processes for ``POST /score``: the CPU-heavy part of a request off the server process.

``churn serve`` is one process: sessions, the sign-in throttle, the run index and every GET
live there, in memory, so nothing about them needs shared storage. Scoring one request costs
16–17 ms of CPU on ``benchmarks/serve.py`` (validation, pandas, LightGBM; about 2 of them in
the server) under the GIL; run in the server's thread pool, eight concurrent clients queued
behind each other on one core, and every GET waited for the GIL behind them. So the server sends each ``POST /score`` body to a pool of worker processes
(:class:`ScoringPool`): each loaded the model once when it started, validates the body and
scores it with exactly the code of in-process scoring (:func:`score_records`), on one thread
(no oversubscription: a worker per core is the parallelism). The server awaits the result, so
its event loop keeps answering other requests meanwhile. (Workers at a lower priority than the
server were tried: on a machine shared with other jobs they starved — 20 scores/s against 30.)

What crosses the process boundary is small and plain: the request's raw bytes, the frozen
``ScoreConfig`` and ``ChurnDefinition`` the server resolved against its runs, and back plain
rows, or the validation errors / rejected rows as tuples. Exceptions never cross it: one that
fails to unpickle would break the whole pool.

A worker that dies (killed, out of memory, a crash in native code) breaks the whole pool, as
Python's process pools do: every request in it then fails with :class:`ScoringUnavailable`
(503); a new pool is started at once (in a thread, not on the event loop), and the next request
is scored by it.

Two bounds keep a stuck or flooded pool from holding the server: when a request has waited
while no request in the pool finished for ``timeout`` seconds (since it arrived, or since the
last one finished — a long queue that moves is not a hang), a worker hangs — which one is
unknown, as Python's pools do not say — so the workers are killed and the pool replaced, as if
one had died; and at most ``max_pending`` requests are in the pool at once (each holds its body,
up to the body limit, in the server and in the call queue), more get :class:`ScoringBusy` (503
with ``Retry-After``) at once instead of queueing without end. A pool that broke while no
request came (a worker killed for memory at night) is replaced when ``/ready`` is asked
(:meth:`ScoringPool.check`), so a readiness probe brings it back.
"""

from __future__ import annotations

import asyncio
import copyreg
import email.message
import gc
import io
import json
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from pydantic import ValidationError
from threadpoolctl import ThreadpoolController, threadpool_limits

from churn.config import ChurnDefinition, ScoreConfig, to_utc, usable_cores
from churn.serve.limits import REQUEST_LIMITS, RequestLimits
from churn.serve.model import ServingModel
from churn.serve.schemas import ScoreRequest, clean_json_request, json_request_model
from churn.serve.scoring import InvalidPayload, RowProblem, score_records

log = logging.getLogger("churn.serve")

#: Native thread pools each worker may use (LightGBM's OpenMP, BLAS): one, the workers are the parallelism.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_workers() -> int:
    """Scoring processes for this machine: one per core it may keep busy (:func:`churn.config.usable_cores`), at most two (the server itself needs a core's share)."""
    return max(1, min(2, usable_cores()))


# --------------------------------------------------------------------------- outcomes (plain, picklable)


@dataclass(frozen=True)
class Scored:
    rows: list[dict[str, object]]
    as_of: str  # the request's as_of, as the response gives it


@dataclass(frozen=True)
class InvalidRequest:
    """The body failed the request schema: pydantic's errors as (loc, msg, type), loc without ``body``."""

    errors: list[tuple[tuple[object, ...], str, str]]


@dataclass(frozen=True)
class Unreadable:
    """The body is not readable JSON text (e.g. not UTF-8): FastAPI answers 400."""


@dataclass(frozen=True)
class RejectedRows:
    message: str
    problems: list[RowProblem]


@dataclass(frozen=True)
class Failed:
    """An unexpected error in the worker, with its traceback for the server's log."""

    traceback: str


Outcome = Scored | InvalidRequest | Unreadable | RejectedRows | Failed


class ScoringUnavailable(RuntimeError):
    """The scoring process holding the request stopped or hung (the pool is being replaced)."""


class ScoringBusy(ScoringUnavailable):
    """``max_pending`` requests are already in the scoring processes' hands: retry shortly."""


# --------------------------------------------------------------------------- the worker side

_SERVING: ServingModel | None = None
_LIMITS: list[object] = []  # keeps the thread-pool limits alive for the worker's life


def _read_only(mapping: dict[object, object]) -> MappingProxyType[object, object]:
    return MappingProxyType(mapping)


def _pickled(serving: ServingModel) -> bytes:
    """``serving`` pickled: its thread-pool controller (native handles) and read-only mappings rebuilt in the worker."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {
        **copyreg.dispatch_table,
        ThreadpoolController: lambda _: (ThreadpoolController, ()),
        MappingProxyType: lambda proxy: (_read_only, (dict(proxy),)),  # the playbook's read-only tables
    }
    pickler.dump(serving)
    return buffer.getvalue()


def _exit_with_parent(parent: int) -> None:
    """A worker whose server died without shutting the pool down (SIGKILL) leaves too."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _start_worker(model: bytes, limits: RequestLimits, parent: int) -> None:
    """Initializer of each worker: one native thread, the model loaded once, the app's limits."""
    global _SERVING
    for name in _THREAD_VARIABLES:  # for native pools started from here on; threadpool_limits below caps those already loaded
        os.environ[name] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the server stops the pool
    _SERVING = pickle.loads(model)  # noqa: S301 — bytes pickled by this service's own process
    _LIMITS.append(threadpool_limits(limits=1))
    REQUEST_LIMITS.set(limits)  # the worker's calls run in this thread, in this context
    json_request_model(limits)  # built now, not on the first request
    gc.collect()
    gc.freeze()  # as the server does: the model's objects never cost a full collection (a latency outlier) again
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _ready(pause: float = 0.0) -> int:
    """A worker's pid once it has loaded the model (``pause``: let the other workers take the next calls)."""
    assert _SERVING is not None
    time.sleep(pause)
    return os.getpid()


class BodyKind(str, Enum):
    """How FastAPI reads a body, decided by its ``content-type`` (``body_kind``)."""

    JSON = "json"  # parsed as JSON, then validated
    RAW = "raw"  # validated as bytes (which fails: the body must be a JSON object)


def body_kind(content_type: str | None) -> BodyKind:
    """FastAPI's rule (strict content type): JSON for ``application/json`` or ``application/*+json``, raw bytes otherwise."""
    if not content_type:
        return BodyKind.RAW
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return BodyKind.JSON if message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json")) else BodyKind.RAW


def parse_body(body: bytes, kind: BodyKind) -> ScoreRequest | InvalidRequest | Unreadable:
    """The body as FastAPI reads and validates a route's single body model: JSON decoded (a decode
    error is a 422 ``json_invalid`` at its position, other failures a 400), then the model
    validated in Python mode from attributes. A clean body takes a faster way to the same model
    (:func:`clean_json_request`); any other comes this way, so its errors are unchanged."""
    value: object = body
    if kind is BodyKind.JSON:
        clean = clean_json_request(body)  # most bodies: validated from the JSON text in one pass
        if clean is not None:
            return clean
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            return InvalidRequest([((exc.pos,), "JSON decode error", "json_invalid")])
        except Exception:  # noqa: BLE001 — e.g. not UTF-8: FastAPI's 400
            return Unreadable()
    try:
        return ScoreRequest.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        return InvalidRequest([(tuple(e["loc"]), str(e["msg"]), str(e["type"])) for e in exc.errors()])


def score_in_worker(body: bytes, kind: BodyKind, config: ScoreConfig, definition: ChurnDefinition) -> Outcome:
    """Validate and score one request in a worker; every outcome a plain value."""
    assert _SERVING is not None, "not a scoring worker"
    try:
        request = parse_body(body, kind)
        if not isinstance(request, ScoreRequest):
            return request
        return Scored(score_records(request, _SERVING, config=config, definition=definition), to_utc(request.as_of).isoformat())
    except InvalidPayload as exc:
        return RejectedRows(str(exc), list(exc.problems))
    except Exception:  # noqa: BLE001 — reported to the server, which logs it and answers 500
        return Failed(traceback.format_exc())


# --------------------------------------------------------------------------- the server side


class ScoringPool:
    """``workers`` scoring processes over one model; replaced as a whole when one dies."""

    def __init__(self, serving: ServingModel, workers: int, limits: RequestLimits, *, timeout: float = 60.0, max_pending: int = 32) -> None:
        if workers < 1:
            raise ValueError(f"a scoring pool needs at least one worker, got {workers}")
        if timeout <= 0 or max_pending < 1:
            raise ValueError(f"a scoring pool needs a positive timeout and room for one request, got {timeout} s and {max_pending}")
        self.workers, self.timeout, self.max_pending = workers, timeout, max_pending
        self.pending = 0  # requests submitted and not yet answered; changed on the event loop only
        self._last_finished = time.monotonic()  # when a request in the pool last finished (set by the pool's own thread)
        self._initargs = (_pickled(serving), limits, os.getpid())
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False
        self.restarts = 0

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server has threads and an initialised OpenMP runtime, which a fork copies half-way
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker, initargs=self._initargs)

    def start(self, timeout: float = 300.0) -> list[int]:
        """Start the workers and wait until they answer (each loads the model as it starts); the
        ids of those that answered."""
        executor = self._running()
        return sorted({f.result(timeout=timeout) for f in [executor.submit(_ready, 0.1) for _ in range(self.workers * 2)]})

    def _running(self) -> ProcessPoolExecutor:
        """The executor, created on first use (its processes start with the first call)."""
        with self._lock:
            return self._running_locked()

    def _running_locked(self) -> ProcessPoolExecutor:
        if self._closed:
            raise ScoringUnavailable("the scoring processes are stopped (the service is shutting down)")
        if self._executor is None:
            self._executor = self._new_executor()
        return self._executor

    async def _current(self) -> ProcessPoolExecutor:
        """:meth:`_running` from the event loop: the lock is held for seconds while a new pool
        starts its workers, and waiting for it there would stop every GET; then in a thread."""
        if self._lock.acquire(blocking=False):
            try:
                return self._running_locked()
            finally:
                self._lock.release()
        return await asyncio.to_thread(self._running)

    @staticmethod
    def _processes(executor: ProcessPoolExecutor | None) -> dict[int, multiprocessing.process.BaseProcess]:
        # no public accessor; a shut-down executor has None there (a restart may be under way in another thread)
        return dict(getattr(executor, "_processes", None) or {})

    def pids(self) -> list[int]:
        return sorted(self._processes(self._executor))

    def alive(self) -> int:
        """Scoring processes running now (fewer than ``workers`` while a new pool starts)."""
        return sum(1 for process in self._processes(self._executor).values() if process.is_alive())

    def check(self) -> None:
        """Start replacing a pool that broke while no request came (in a thread: starting workers
        takes seconds); a request would otherwise be the only thing to notice it."""
        executor = self._executor
        if executor is not None and getattr(executor, "_broken", False) and not self._closed:
            threading.Thread(target=self._replace, args=(executor,), name="churn-pool-restart", daemon=True).start()

    def _stop_hung(self, executor: ProcessPoolExecutor) -> None:
        """Kill the workers of a pool that did not answer in time and start a new one. Which
        worker hangs is unknown, and killing any one breaks the pool anyway, so all go; the
        other requests in it get the same 503 as after a crash."""
        with self._lock:
            if self._executor is not executor or self._closed:
                return
            log.error("no scoring request finished for %g s; stopping the scoring processes", self.timeout)
            for process in self._processes(executor).values():  # no public way to stop a pool's workers
                process.kill()
            self._replace_locked(executor)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """A new pool for a broken one (once, whoever notices first)."""
        with self._lock:
            self._replace_locked(broken)

    def _replace_locked(self, broken: ProcessPoolExecutor) -> None:
        if self._executor is not broken or self._closed:
            return
        log.error("a scoring process stopped; starting %d new one(s)", self.workers)
        broken.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor()
        self.restarts += 1
        for _ in range(self.workers):  # start loading the model now, not on the next request
            self._executor.submit(_ready)

    async def score(self, body: bytes, kind: BodyKind, config: ScoreConfig, definition: ChurnDefinition) -> Outcome:
        """Validate and score ``body`` in a worker; :class:`ScoringUnavailable` if the workers
        died meanwhile. Replacing a broken pool runs in a thread: starting a spawned worker
        writes it the pickled model and waits for it, which must not stop the event loop
        (every GET and page) for the seconds that takes."""
        if self.pending >= self.max_pending:
            raise ScoringBusy(f"{self.pending} requests are already waiting for the scoring processes; retry shortly")
        self.pending += 1
        try:
            return await self._score(body, kind, config, definition)
        finally:
            self.pending -= 1

    async def _score(self, body: bytes, kind: BodyKind, config: ScoreConfig, definition: ChurnDefinition) -> Outcome:
        for attempt in range(2):
            executor = await self._current()
            try:
                future = executor.submit(score_in_worker, body, kind, config, definition)
                break
            except (BrokenProcessPool, RuntimeError):  # broken between requests, or just replaced: never reached a worker
                if attempt:
                    raise ScoringUnavailable("the scoring processes cannot start; see the service log") from None
                await asyncio.to_thread(self._replace, executor)
        arrived = time.monotonic()
        future.add_done_callback(self._finished)
        answer = asyncio.wrap_future(future)
        try:
            while True:
                try:
                    return await asyncio.wait_for(asyncio.shield(answer), max(self._until_hung(arrived), 0.0))
                except TimeoutError:
                    if self._until_hung(arrived) <= 0:  # nothing in the pool finished meanwhile: hung
                        break
        except BrokenProcessPool:
            await asyncio.to_thread(self._replace, executor)
            raise ScoringUnavailable("a scoring process stopped while this request was in the pool; a new pool is starting, retry shortly") from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and (task is None or not task.cancelling()):  # the pool was replaced before a worker took it
                raise ScoringUnavailable("the scoring processes were replaced while this request waited; retry shortly") from None
            raise
        await asyncio.to_thread(self._stop_hung, executor)
        raise ScoringUnavailable(f"no scoring request finished for {self.timeout:g} s; the scoring processes were stopped and a new pool is starting, retry shortly")

    def _finished(self, _future: object) -> None:
        self._last_finished = time.monotonic()

    def _until_hung(self, arrived: float) -> float:
        """Seconds left before a request that arrived at ``arrived`` takes the pool as hung: no
        request finished for ``timeout`` since it arrived or since the last one finished."""
        return self.timeout - (time.monotonic() - max(self._last_finished, arrived))

    def close(self) -> None:
        """Stop every worker and wait for them (no stray processes)."""
        with self._lock:
            executor, self._executor, self._closed = self._executor, None, True
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

