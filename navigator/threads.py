"""Waiting for a background thread through Ctrl-C.

A KeyboardInterrupt raised inside `Thread.join` on Python 3.11 leaves the thread taken for ended while it runs on.
A daemon thread that is still inside OpenCV or another C++ library when Python ends aborts the process ("FATAL:
exception not rethrown", "terminate called without an active exception"). So the threads that call such libraries
(the training loop's batches, the video encoder) are waited for with `join_through_interrupts`.
"""

from __future__ import annotations

import threading


def join_through_interrupts(worker: threading.Thread, finished: threading.Event) -> None:
    """Wait until `worker` has `finished` (an Event it sets as its last act), however many Ctrl-Cs arrive
    meanwhile, and join it; then raise the first KeyboardInterrupt that arrived."""
    interrupted: KeyboardInterrupt | None = None
    while not finished.is_set():
        try:
            finished.wait(0.1)
        except KeyboardInterrupt as error:
            interrupted = interrupted or error
    worker.join()  # it has done its work: only the thread's own end is left
    if interrupted is not None:
        raise interrupted
