"""Progress on long work: a live bar on a terminal or in a notebook, plain periodic lines anywhere else.

A live bar redraws one line with carriage returns and escape codes; piped to a
file or a CI log those pile up (hundreds of kilobytes for ``make demo``).
:func:`live_display` tells the two cases apart; :class:`PeriodicLines` writes
the plain lines: one at each tenth of the work, at most one per
``min_seconds``. :func:`progress_batches` (translation, alignment) uses a tqdm
bar or those lines; :func:`seq2seq_keras.training.loop.train` uses Keras' bar or
those lines (:class:`~seq2seq_keras.training.loop.PeriodicProgress`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

#: A plain progress line is written at every this fraction of the work ...
LINE_EVERY_FRACTION = 0.1
#: ... when at least this many seconds have passed since the previous line (the last one always comes).
LINE_MIN_SECONDS = 5.0


def live_display(stream=None) -> bool:
    """Whether ``stream`` (default: ``sys.stdout``) shows a redrawn progress bar as a bar: a terminal, or a
    Jupyter/Colab kernel's output area. A file, a pipe or a CI log gets plain lines instead."""
    stream = sys.stdout if stream is None else stream
    if "ipykernel" in sys.modules:  # a notebook's output area redraws a bar (the stream is no terminal)
        from IPython import get_ipython

        if getattr(get_ipython(), "kernel", None) is not None:
            return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class PeriodicLines:
    """Plain progress lines (no carriage return, no escape code) for output that is not a terminal.

    ``update(done)`` writes ``"<desc>: <done>/<total> <unit> (<percent>%), <seconds> s[, <extra>]"`` when
    ``done`` crossed another ``every_fraction`` of ``total`` and at least ``min_seconds`` passed since the
    last line; ``close()`` writes the line for the final count (``done``, whatever the time).

    Args:
        total: the amount of work (> 0; with 0 or None only ``close()`` writes).
        desc: what is being done, at the start of each line.
        unit: what ``total`` counts (``"sent"``, ``"batches"``).
        stream: where to write (default ``sys.stderr``); flushed after each line.
        clock: seconds, for the interval (default ``time.monotonic``).
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str,
        *,
        stream=None,
        every_fraction: float = LINE_EVERY_FRACTION,
        min_seconds: float = LINE_MIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = sys.stderr if stream is None else stream
        self.every_fraction, self.min_seconds, self.clock = every_fraction, min_seconds, clock
        self.start = self.last_time = clock()
        self.done = 0
        self._next_mark = 1  # the tenth (every_fraction) of the work whose crossing writes the next line

    def _mark(self, done: int) -> int:
        return int(done / self.total / self.every_fraction + 1e-9) if self.total else 0

    def update(self, done: int, extra: str | Callable[[], str] = "") -> None:
        """``done`` of ``total`` finished (a count, not an increment); ``extra``: text for the end of the
        line, or a function giving it (called only when a line is written)."""
        self.done = done
        if not self.total or done >= self.total or self._mark(done) < self._next_mark:
            return
        now = self.clock()
        if now - self.last_time < self.min_seconds:
            return
        self._write(done, now, extra() if callable(extra) else extra)
        self._next_mark = self._mark(done) + 1

    def close(self, extra: str = "") -> None:
        """Write the final line (the count reached)."""
        self._write(self.done, self.clock(), extra)

    def _write(self, done: int, now: float, extra: str) -> None:
        self.last_time = now
        share = f" ({100 * done / self.total:.0f}%)" if self.total else ""
        of = f"/{self.total}" if self.total else ""
        line = f"{self.desc}: {done}{of} {self.unit}{share}, {now - self.start:.0f} s"
        self.stream.write(line + (f", {extra}" if extra else "") + "\n")
        self.stream.flush()


def progress_batches(iterable, enabled: bool, desc: str, *, total_items: int, batch_size: int, stream=None):
    """Yield from ``iterable`` (batch starts) with progress counted in sentences (``enabled``: show it).

    On a terminal or in a notebook a tqdm bar; elsewhere (a file, a pipe) :class:`PeriodicLines`.
    Both write to ``stream`` (default ``sys.stderr``).
    """
    if not enabled:
        yield from iterable
        return
    stream = sys.stderr if stream is None else stream
    if not live_display(stream):
        lines = PeriodicLines(total_items, desc, "sent", stream=stream)
        for item in iterable:
            yield item
            lines.update(min(item + batch_size, total_items))
        lines.close()
        return
    from tqdm.auto import tqdm

    with tqdm(total=total_items, desc=desc, unit="sent", leave=True, file=stream) as bar:
        for item in iterable:
            yield item
            bar.update(min(batch_size, total_items - item))
