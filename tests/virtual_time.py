"""Virtual time for tests: an asyncio event loop whose clock jumps instead of waiting.

:class:`VirtualTimeLoop` is a real selector event loop whose ``time()`` is virtual. Whenever
nothing is ready to run and no I/O is pending, instead of blocking until its next timer it
moves its clock to that timer at once. Every ``asyncio.sleep``, ``loop.call_later`` and
timeout (anyio's and httpx's included) therefore takes no wall time, and concurrent sleepers
overlap exactly as they would in real time: ten callers each sleeping one second move the
clock one second, not ten (unlike a fake clock whose ``sleep`` adds up).

Inject ``loop.time`` as the clock of whatever measures elapsed time (the client's ``clock``
and rate limiter, the simulator's ``Clock(monotonic=...)``), so everyone reads the same
virtual time. Work handed to threads (``run_in_executor``, ``asyncio.to_thread``) is waited
for in real time: the clock never jumps while a thread is still running.

Run a coroutine on it with :func:`run_virtual`.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

START = 10_000.0
"""Where virtual time starts (any value: only differences matter)."""


class _VirtualSelector(selectors.DefaultSelector):
    """The loop's selector: a real poll first; a virtual jump when nothing can happen."""

    loop: VirtualTimeLoop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None or self.loop.threads_running:
            # nothing scheduled, or a thread will wake us: wait for real
            return super().select(timeout)
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop on virtual time (see the module docstring)."""

    def __init__(self) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = START
        self.threads_running = 0
        self.jumped = 0.0
        """Virtual seconds the clock jumped over (time nobody had anything to do)."""

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._virtual_now += seconds
            self.jumped += seconds

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self.threads_running += 1

        def done(_: asyncio.Future[T]) -> None:
            self.threads_running -= 1

        future.add_done_callback(done)
        return future


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to completion on a fresh :class:`VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main())
