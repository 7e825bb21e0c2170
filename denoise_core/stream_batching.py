"""Many streams on one thread, their model calls batched: :class:`StreamBatcher`.

A streaming model call on one 16-ms frame costs mostly the graph's fixed per-call overhead, not
arithmetic, so twenty streams each calling on their own pay that overhead twenty times; and
twenty threads each doing a stream's small numpy steps spend more on handing the interpreter
lock around than on the work. A :class:`StreamBatcher` runs the pushes of every stream on its
one worker thread instead:

- a push arrives as a step generator (:meth:`StreamingDenoiser.push_steps
  <denoise_core.streaming.StreamingDenoiser.push_steps>`) and runs there up to its next model
  call;
- each round, the worker takes the next frame of every waiting call (``max_batch`` rows at most,
  the rest first in the next round), concatenates them along the batch axis (features, valid and
  each state tensor), runs one onnxruntime call and hands each its rows back;
- a call whose frames are all answered resumes its generator, up to its next call or its end.

The model's rows are independent, so a stream's output does not depend on what it was batched
with. No step waits for company: with one stream the worker calls at once.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable

import numpy as np

from denoise_core.streaming import State, StepResult, Steps, StreamingModel

Step = Callable[[np.ndarray, np.ndarray, State], StepResult]


class _Job:
    """One push (or flush) in progress: its generator and the model call it waits on."""

    def __init__(self, steps: Steps[Any]) -> None:
        self.steps, self.done = steps, Future()
        self.features = self.valid = np.zeros(0, np.float32)
        self.state: State = {}
        self.frame = 0  # the next frame of the current call to run
        self.masks: list[np.ndarray] = []

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])

    def advance(self, answer: StepResult | None) -> bool:
        """Resume the generator (``None``: start it); ``True`` while it waits on a model call."""
        try:
            request = next(self.steps) if answer is None else self.steps.send(answer)
        except StopIteration as finished:
            self.done.set_result(finished.value)
            return False
        except Exception as exc:  # a bad push: its caller gets the error, the others go on
            self.done.set_exception(exc)
            return False
        features, valid, self.state = request
        self.features, self.valid = np.asarray(features, np.float32), np.asarray(valid, np.float32)
        self.frame, self.masks = 0, []
        return True

    def fail(self, exc: BaseException) -> None:
        self.steps.close()
        if not self.done.done():
            self.done.set_exception(exc)


class StreamBatcher:
    """Runs step generators of any number of streams on one thread, batching their model calls.

    ``step`` is the model call (``StreamingModel.step``); ``on_batch(rows)`` is called after each
    call with its batch rows (for metrics). Thread-safe: :meth:`submit` from any thread.
    """

    def __init__(self, model: StreamingModel, max_batch: int = 32, on_batch: Callable[[int], None] | None = None,
                 step: Step | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.model, self.max_batch, self.on_batch = model, max_batch, on_batch
        self.step = step or model.step
        self.calls = 0  # model calls made
        self.rows = 0  # batch rows over all calls
        self._inbox: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False

    def submit(self, steps: Steps[Any]) -> Future:
        """Queue a step generator; the future gets its return value (or its exception)."""
        job = _Job(steps)
        with self._lock:
            if self._closed:
                steps.close()
                raise RuntimeError("the stream batcher is closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve, name="stream-batcher", daemon=True)
                self._worker.start()
            self._inbox.put(job)
        return job.done

    def run(self, steps: Steps[Any]) -> Any:
        """:meth:`submit` and wait for the result."""
        return self.submit(steps).result()

    def close(self) -> None:
        """Finish the submitted work, then stop the worker; later submits raise ``RuntimeError``."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
            if worker is not None:
                self._inbox.put(None)
        if worker is not None:
            worker.join()

    def _serve(self) -> None:
        waiting: deque[_Job] = deque()
        stopping = False
        while waiting or not stopping:
            try:
                while True:  # take new work; block only when there is nothing else to do
                    job = self._inbox.get(block=not waiting and not stopping)
                    if job is None:
                        stopping = True
                    elif job.advance(None):
                        waiting.append(job)
                    if waiting and self._inbox.empty():
                        break
            except queue.Empty:
                pass
            if waiting:
                self._round(waiting)

    def _round(self, waiting: deque[_Job]) -> None:
        """One model call: the next frame of the waiting jobs, first come first."""
        batch, rows = [], 0
        while waiting and (not batch or rows + waiting[0].rows <= self.max_batch):
            job = waiting.popleft()
            batch.append(job)
            rows += job.rows
        try:
            if len(batch) == 1:
                only = batch[0]
                b = only.frame
                answers = [self.step(only.features[:, :, b : b + 1], only.valid[:, b : b + 1], only.state)]
            else:
                features = np.concatenate([j.features[:, :, j.frame : j.frame + 1] for j in batch])
                valid = np.concatenate([j.valid[:, j.frame : j.frame + 1] for j in batch])
                state = {name: np.concatenate([j.state[name] for j in batch]) for name in batch[0].state}
                mask, next_state = self.step(features, valid, state)
                answers, start = [], 0
                for j in batch:
                    part = slice(start, start + j.rows)
                    answers.append((mask[part], {name: v[part] for name, v in next_state.items()}))
                    start += j.rows
        except Exception as exc:  # the model call failed: every job in it gets the error
            for j in batch:
                j.fail(exc)
            return
        finally:
            self.calls += 1
            self.rows += rows
            if self.on_batch is not None:
                self.on_batch(rows)
        for j, (mask, next_state) in zip(batch, answers):
            j.masks.append(mask)
            j.state = next_state
            j.frame += 1
            if j.frame < j.features.shape[2]:
                waiting.append(j)  # its call's next frame, in the next round
            elif j.advance((np.concatenate(j.masks, axis=2) if len(j.masks) > 1 else j.masks[0], j.state)):
                waiting.append(j)
