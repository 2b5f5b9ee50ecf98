"""progress.py: a live bar on a terminal, plain periodic lines (no carriage return, no escape code) elsewhere."""

import io
import re

import pytest

from seq2seq_keras.progress import PeriodicLines, live_display, progress_batches

_CONTROL = re.compile(r"[\r\b\x1b]")


class Clock:
    """A clock the test moves: ``now`` seconds."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_live_display_is_a_terminal_and_nothing_else():
    assert live_display(Terminal())
    assert not live_display(io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not live_display(closed)  # isatty() raises ValueError on a closed stream
    assert not live_display(object())  # no isatty at all


def test_periodic_lines_every_tenth_and_never_closer_than_min_seconds():
    """100 steps, 1 s each: a line at 10, 20, ..., 90 (each 10 s after the last), then the closing line.
    At 0.3 s per step with a 5 s floor, a line comes at the first step 5 s after the previous line that is
    also past a new tenth: steps 17 (5.1 s), 34 (10.2 s), 51, 68, 85, with the count of that step."""
    clock, out = Clock(), io.StringIO()
    lines = PeriodicLines(100, "alignment", "sent", stream=out, clock=clock)
    for done in range(1, 101):
        clock.now = float(done)
        lines.update(done, extra=lambda: "loss 1.0")
    lines.close()
    got = out.getvalue().splitlines()
    assert got == [f"alignment: {k}/100 sent ({k}%), {k} s, loss 1.0" for k in range(10, 100, 10)] + [
        "alignment: 100/100 sent (100%), 100 s"
    ]

    clock, out = Clock(), io.StringIO()
    lines = PeriodicLines(100, "x", "sent", stream=out, clock=clock)
    for done in range(1, 100):
        clock.now = done * 0.3  # a tenth every 3 s
        lines.update(done)
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == [
        f"x: {k}/100 sent ({k}%)" for k in (17, 34, 51, 68, 85)
    ]
    assert not _CONTROL.search(out.getvalue())


def test_periodic_lines_without_a_total_write_only_the_closing_line():
    out = io.StringIO()
    lines = PeriodicLines(None, "epoch 1/2", "batches", stream=out, min_seconds=0)
    for done in range(1, 50):
        lines.update(done)
    lines.close()
    assert out.getvalue() == "epoch 1/2: 49 batches, 0 s\n"


@pytest.mark.parametrize("total", [1, 7, 64, 130])
def test_progress_batches_writes_plain_lines_to_a_file_and_a_bar_to_a_terminal(total):
    starts = range(0, total, 16)
    plain = io.StringIO()
    assert list(progress_batches(starts, True, "greedy", total_items=total, batch_size=16, stream=plain)) == list(
        starts
    )
    assert not _CONTROL.search(plain.getvalue())
    assert plain.getvalue().splitlines()[-1].startswith(f"greedy: {total}/{total} sent (100%), ")

    terminal = Terminal()
    assert list(progress_batches(starts, True, "greedy", total_items=total, batch_size=16, stream=terminal)) == list(
        starts
    )
    assert "\r" in terminal.getvalue() and f"{total}/{total}" in terminal.getvalue()  # tqdm's redrawn bar

    silent = io.StringIO()
    assert list(progress_batches(starts, False, "greedy", total_items=total, batch_size=16, stream=silent)) == list(
        starts
    )
    assert silent.getvalue() == ""
