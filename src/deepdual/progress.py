r"""Progress display and time limit of long solves.

A :class:`Monitor` is what an iterative solver talks to while it runs.  The solver calls
it with its state,

.. code-block:: python

    if monitor(iteration, objective, bound, gap):   # True: stop now (time limit)
        break

and the monitor updates a tqdm progress bar (iterations, objective, bound, relative gap)
and answers whether the solve's ``time_limit`` has passed.  :func:`deepdual.solve`
installs one monitor per call (:func:`monitoring`); solvers deep in the call tree get it
with :func:`current` and need no extra argument, so every solver's options stay its own.
Outside a monitored call :func:`current` returns an inert monitor (no bar, no limit).

Display rules
-------------
* ``progress=None`` (the default of :func:`deepdual.solve`): a bar when standard error
  is a terminal (an interactive session), none otherwise (logs, pipes, test runners);
* ``progress=True``: a bar even when standard error is not a terminal;
* ``progress=False``: never a bar;
* tqdm is optional (extras ``[torch]`` and ``[progress]``): without it there is no bar
  and nothing else changes;
* the bar appears only after :data:`BAR_DELAY` seconds (tqdm's ``delay``), so solves
  that finish quickly print nothing.

Time limit
----------
``time_limit`` (seconds) is checked by the solvers at every iteration.  A solver that
stops because of it calls :meth:`Monitor.stop`; :func:`deepdual.solve` then reports
``info["status"] = "time_limit"`` and a note.  Stopping early never weakens a
certificate: the lower bound reported is still a proven weak-duality bound (the
solution is certified only if that bound closes the gap).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import sys
import time
from typing import Any, Iterator

__all__ = ["Monitor", "monitoring", "current", "show_progress", "check_time_limit", "BAR_DELAY"]

#: seconds before a bar appears (shorter solves print nothing)
BAR_DELAY = 2.0

_CURRENT: contextvars.ContextVar["Monitor | None"] = contextvars.ContextVar("deepdual_monitor", default=None)


def show_progress(progress: Any) -> bool:
    """Whether a bar is wanted: ``None`` means "when standard error is a terminal".

    Raises ``TypeError`` for anything but ``None``, ``True`` or ``False``."""
    if progress is None:
        stream = sys.stderr
        try:
            return bool(stream is not None and stream.isatty())
        except (AttributeError, ValueError):  # closed or replaced stream
            return False
    if isinstance(progress, bool) or type(progress).__name__ == "bool_":
        return bool(progress)
    raise TypeError(f"`progress` must be True, False or None (a bar when stderr is a terminal), got {progress!r}")


def check_time_limit(time_limit: Any) -> float | None:
    """``None`` or a positive finite number of seconds; else ``ValueError``/``TypeError``."""
    if time_limit is None:
        return None
    if isinstance(time_limit, bool) or not isinstance(time_limit, numbers.Real):
        raise TypeError(f"`time_limit` must be a number of seconds or None, got {time_limit!r}")
    t = float(time_limit)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"`time_limit` must be a positive finite number of seconds, got {time_limit!r}")
    return t


def _fmt(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.6g}"


class Monitor:
    r"""Progress bar and time limit of one solve.

    Parameters
    ----------
    progress : bool or None
        See the module's display rules.
    time_limit : float or None
        Seconds from the monitor's creation after which :meth:`expired` is true.
    desc : str
        Label of the bar.

    Notes
    -----
    Calling the monitor, ``monitor(iteration, objective, bound, gap)``, reports a
    solver's state: ``iteration`` counts that solver's iterations (a smaller value than
    the last starts a new stage and is added), ``gap`` is the relative duality gap
    :math:`(P - D)/|P|`; any of the last three may be ``None``.  It returns
    :meth:`expired`: true when the solver should stop.  Inner loops that know no
    objective call :meth:`tick`; outer loops that know one but count no iterations call
    :meth:`report`.
    """

    def __init__(self, *, progress: Any = None, time_limit: Any = None, desc: str = "deepdual") -> None:
        self.show = show_progress(progress)
        self.time_limit = check_time_limit(time_limit)
        self.desc = desc
        self.start = time.perf_counter()
        self.iterations = 0
        self.stopped_in: list[str] = []
        self._last = 0
        self._bar: Any = None
        self._bar_failed = False

    # ---------------------------------------------------------------- time
    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        """Seconds left (``inf`` without a limit, never negative)."""
        if self.time_limit is None:
            return math.inf
        return max(self.time_limit - self.elapsed, 0.0)

    def expired(self) -> bool:
        """Whether the time limit has passed."""
        return self.time_limit is not None and self.elapsed >= self.time_limit

    def stop(self, where: str) -> None:
        """Record that the solver ``where`` stopped early because of the time limit."""
        if where not in self.stopped_in:
            self.stopped_in.append(where)

    @property
    def stopped(self) -> bool:
        """Whether some solver stopped because of the time limit."""
        return bool(self.stopped_in)

    # ---------------------------------------------------------------- display
    def _ensure_bar(self) -> Any:
        if not self.show or self._bar is not None or self._bar_failed:
            return self._bar
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is optional: no bar
            self._bar_failed = True
            return None
        self._bar = tqdm(total=None, desc=self.desc, unit="it", leave=False, delay=BAR_DELAY,
                         dynamic_ncols=True, file=sys.stderr)
        return self._bar

    def __call__(self, iteration: int, objective: float | None = None, bound: float | None = None,
                 gap: float | None = None) -> bool:
        it = int(iteration)
        step = it - self._last if it >= self._last else it
        self._last = it
        self.iterations += max(step, 0)
        bar = self._ensure_bar()
        if bar is not None:
            bar.update(max(step, 0))
            bar.set_postfix_str(f"objective={_fmt(objective)} bound={_fmt(bound)} gap={_fmt(gap)}",
                                refresh=False)
        return self.expired()

    def tick(self, k: int = 1) -> bool:
        """Advance the bar by ``k`` iterations (inner loops); returns :meth:`expired`."""
        self.iterations += k
        bar = self._ensure_bar()
        if bar is not None:
            bar.update(k)
        return self.expired()

    def report(self, objective: float | None = None, bound: float | None = None, gap: float | None = None,
               **extra: Any) -> bool:
        """Show the current objective, bound and relative gap (and ``extra`` fields)
        without advancing the iteration count; returns :meth:`expired`."""
        bar = self._ensure_bar()
        if bar is not None:
            more = "".join(f" {k}={v}" for k, v in extra.items())
            bar.set_postfix_str(f"objective={_fmt(objective)} bound={_fmt(bound)} gap={_fmt(gap)}{more}",
                                refresh=False)
        return self.expired()

    def stage(self, desc: str) -> None:
        """Name the current stage on the bar (e.g. the inner solver in use)."""
        self._last = 0
        if self._bar is not None:
            self._bar.set_description_str(f"{self.desc}: {desc}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


#: the inert monitor returned outside monitored calls
_INERT = Monitor(progress=False)


def current() -> Monitor:
    """The monitor of the solve in progress (an inert one outside :func:`monitoring`)."""
    mon = _CURRENT.get()
    return _INERT if mon is None else mon


@contextlib.contextmanager
def monitoring(*, progress: Any = None, time_limit: Any = None, desc: str = "deepdual") -> Iterator[Monitor]:
    """Install a :class:`Monitor` for the calls inside the ``with`` block (closed on exit).

    A nested block without its own ``time_limit`` keeps the enclosing block's deadline
    (e.g. :func:`deepdual.regularization_path` calling :func:`deepdual.solve`)."""
    mon = Monitor(progress=progress, time_limit=time_limit, desc=desc)
    outer = _CURRENT.get()
    if outer is not None and outer.time_limit is not None:
        left = outer.remaining()
        if mon.time_limit is None or left < mon.time_limit:
            mon.time_limit = max(left, 1e-9)
    token = _CURRENT.set(mon)
    try:
        yield mon
    finally:
        _CURRENT.reset(token)
        mon.close()
        if outer is not None:
            for where in mon.stopped_in:
                outer.stop(where)
