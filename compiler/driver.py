"""The one driver of every batch (`elig evaluate`, `elig diff --records`, FHIR input): the items
are cut into chunks, each chunk is worked on in this process (small batches) or on every core
(large ones), and the chunks' results are handed on in input order, so that every item gets
exactly one result, in order, errors included. Memory stays bounded by the chunks in flight.

What the caller supplies:

- ``init(*initargs)``: the state a chunk is worked on with (a loaded evaluator module, a pair of
  them, a converter ...); run once in each worker process, or once here for a small batch
  (unless the caller already has that state and passes it as ``state``);
- ``work(state, chunk, *args)``: one chunk's result, handed to ``consume`` in input order.

Both are top-level functions (a worker finds them by name). A worker ends silently when the run
is stopped: SIGTERM kills it without a traceback, Ctrl-C (sent to the whole process group) is the
parent's to handle, and it ends with the run's process however that ends (SIGKILL included).
A worker that ends abruptly (killed, out of memory, a crash in C code) loses the chunks in
flight: they are run again on new workers, so the results are complete and the same; when that
keeps happening (a record that kills the process evaluating it) the run stops with
:class:`WorkerDied`, never leaving a gap in the results or waiting for ever.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import itertools
import multiprocessing
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator

__all__ = ["WorkerDied", "chunked", "run_chunks"]


class WorkerDied(Exception):
    """Workers kept ending abruptly (each time the chunks in flight were run again on new workers);
    items first..last (1-based, in input order) have no result."""

    def __init__(self, first: int, last: int, noun: str = "records"):
        self.first, self.last = first, last
        super().__init__(f"worker processes ended abruptly again and again (a crash evaluating one of them, or "
                         f"memory too short) while {noun} {first}-{last} were being worked on; the run stopped")


def chunked(items: Iterable, size: int) -> Iterator[list]:
    """Lists of up to size items (records, or patients' resource groups), in order."""
    chunk = []
    for r in items:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_chunks(items: Iterable, work: Callable, consume: Callable, *, init: Callable, initargs: tuple = (),
               state=None, args: tuple = (), jobs: int = 0, size: int, threshold: int, noun: str = "records") -> None:
    """consume(work(state, chunk, *args)) for every chunk of size items, in input order.

    jobs: worker processes; 0 means one per core once the batch has at least threshold items
    (a smaller batch runs here), 1 means here. Raises WorkerDied when workers keep ending abruptly;
    an exception raised by work, consume or by reading items stops the run and propagates.
    noun names the items in WorkerDied's message."""
    chunks = chunked(items, size)
    first = []
    for c in chunks:
        first.append(c)
        if len(first) * size >= threshold:
            break
    workers = jobs if jobs > 0 else (multiprocessing.cpu_count() or 1)
    big = len(first) * size >= threshold
    if workers <= 1 or jobs == 1 or (jobs == 0 and not big):
        if state is None:
            state = init(*initargs)
        for c in itertools.chain(first, chunks):
            consume(work(state, c, *args))
        return
    pool = _Pool(workers, init, initargs, work, args, noun)
    limit = workers * 4
    done = 0
    try:
        for c in itertools.chain(first, chunks):
            pool.submit(c, done + 1)
            done += len(c)
            if len(pool.pending) >= limit:
                consume(pool.next_result())
        while pool.pending:
            consume(pool.next_result())
    except BaseException:
        pool.executor.shutdown(wait=False, cancel_futures=True)
        raise
    pool.executor.shutdown(wait=True)


class _Pool:
    """The worker processes and the chunks in flight, in input order. When a worker ends
    abruptly every chunk in flight is lost: they are run again on new workers (the results are
    the same), at most MAX_RESTARTS times in a run; after that (a record that kills the process
    evaluating it, memory that is short for good) the run stops with WorkerDied."""

    MAX_RESTARTS = 2

    def __init__(self, workers, init, initargs, work, args, noun):
        self.ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        self.workers, self.init, self.initargs, self.work, self.args, self.noun = workers, init, initargs, work, args, noun
        self.executor = self._executor()
        self.pending = collections.deque()  # [future, chunk, first item], in input order
        self.restarts = 0

    def _executor(self):
        return cf.ProcessPoolExecutor(self.workers, mp_context=self.ctx, initializer=_init_worker,
                                      initargs=(self.init, self.initargs))

    def _submit(self, chunk):
        return self.executor.submit(_work_in_worker, self.work, chunk, self.args)

    def submit(self, chunk, first: int):
        try:
            future = self._submit(chunk)
        except BrokenProcessPool:
            future = None
        self.pending.append([future, chunk, first])
        if future is None:
            self._restart()

    def next_result(self):
        """The oldest chunk's result. Waits in short slices: a signal (SIGTERM, Ctrl-C) that the
        kernel hands to one of the pool's threads only runs its handler when the main thread
        wakes up."""
        while True:
            try:
                result = self.pending[0][0].result(0.25)
            except cf.TimeoutError:
                continue
            except BrokenProcessPool:
                self._restart()
                continue
            self.pending.popleft()
            return result

    def _restart(self):
        # a stop signal sent to the whole group ends the workers too: its handler (which ends the
        # run in its own way) runs during this pause, before the workers are started again
        time.sleep(0.25)
        self.restarts += 1
        if self.restarts > self.MAX_RESTARTS:
            last = self.pending[-1][2] + len(self.pending[-1][1]) - 1
            raise WorkerDied(self.pending[0][2], last, self.noun)
        self.executor.shutdown(wait=True, cancel_futures=True)  # its thread ends before new workers are forked
        self.executor = self._executor()
        for task in self.pending:  # the chunks whose results were lost, in order
            f = task[0]
            if f is None or not f.done() or isinstance(f.exception(), BrokenProcessPool):
                try:
                    task[0] = self._submit(task[1])
                except BrokenProcessPool:  # already broken again: the next wait restarts it
                    task[0] = None
                    return self._restart()


# ---------------------------------------------------------------------- in a worker process

_STATE = None


def _init_worker(init: Callable, initargs: tuple):
    global _STATE
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _end_with_parent()
    _STATE = init(*initargs)


def _work_in_worker(work: Callable, chunk: list, args: tuple):
    return work(_STATE, chunk, *args)


def _end_with_parent():
    """A worker ends when the run's process ends, however it ends (SIGKILL included): on Linux
    the kernel sends it SIGTERM then (prctl PR_SET_PDEATHSIG); elsewhere the pool's pipes close."""
    import os
    import signal

    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the request took effect
        os._exit(1)
