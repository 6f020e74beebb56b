"""Produce the next chunks of batches in a background thread while the current one trains.

Simulating and configuring (numpy) overlaps with the compiled training step (TensorFlow):
both release the GIL in their heavy operations, so a bounded queue between a producer thread
and the training loop keeps the network busy without holding more than a few chunks in memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Prefetcher:
    """Iterate over ``make_iterator()`` in a background thread, at most ``max_ahead`` items ahead.

    An exception raised by the producer is re-raised (same object, same traceback) by the
    consumer at the point where the failed item would have arrived. :meth:`close` stops the
    producer; use the prefetcher as a context manager to close it on any exit.

    Parameters
    ----------
    make_iterator : callable
        Returns the iterator to run in the thread (created inside the thread).
    max_ahead : int, default 2
        Bound of the queue.
    enabled : bool, default True
        ``False`` iterates in the calling thread (simpler debugging, same results).
    """

    def __init__(self, make_iterator: Callable[[], Iterator[Any]], max_ahead: int = 2, enabled: bool = True):
        self._make_iterator = make_iterator
        self._enabled = enabled
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(max_ahead)))
        self._thread: threading.Thread | None = None
        self._local: Iterator[Any] | None = None
        if enabled:
            self._thread = threading.Thread(target=self._produce, name="amortflow-producer", daemon=True)
            self._thread.start()
        else:
            self._local = iter(make_iterator())

    def _put(self, item: Any) -> bool:
        """Put ``item`` unless stopped; return False when the consumer has gone."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._make_iterator():
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
            self._put(_Failure(exc))

    def __iter__(self) -> Prefetcher:
        return self

    def __next__(self) -> Any:
        if self._local is not None:
            return next(self._local)
        if self._thread is None:
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self._thread = None
            raise StopIteration
        if isinstance(item, _Failure):
            self._thread = None
            raise item.exc
        return item

    def close(self) -> None:
        """Stop the producer and wait for it (it finishes at most its current item)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            while thread.is_alive():
                try:  # unblock a producer waiting on a full queue
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
                thread.join(timeout=0.05)
        self._local = None

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
