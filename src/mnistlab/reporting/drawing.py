"""Where a report's figures are drawn: in this process, or shared with one helper process.

Drawing is most of what writing a report costs (matplotlib lays out every label
of every figure), and each figure is a function of plain numbers that writes one
PNG, so any process can draw it. Report code draws through `draw(plot, *arguments)`.
Inside `figure_helper()`, a helper process started when the block opens takes
each figure while it has fewer than HELPER_QUEUE queued, and this process draws
the rest; `finish_drawing()` waits for the helper's figures before a report reads
the files.

The console script opens the block before it imports PyTorch, so the helper's
own imports (NumPy, matplotlib) run on another core while this process loads
PyTorch and the data; between then and the report it waits without using the CPU.
Outside the block (a notebook, a library call), every figure is drawn in the
calling process, as plain calls.

The helper only speeds drawing up: a figure it fails to draw, for whatever
reason (its own error, a full disk, the helper killed), is drawn again here,
so errors reach the caller exactly as they would without it.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import multiprocessing
import signal
import threading
import warnings
from typing import Callable, Iterator

HELPER_QUEUE = 2  # figures sent to the helper and not yet drawn, at most: it never waits while this process works
HELPER_EXIT_SECONDS = 5  # how long a helper that was asked to stop may take before it is killed


def _serve(connection) -> None:
    """The helper process: import the plotting modules, then draw each figure it is sent and say whether it could."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to handle; it stops the helper
    warnings.simplefilter("error")  # a figure that warns is drawn again by the command, which shows warnings its way
    _warm_up()

    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):  # the command ended without saying goodbye
            return
        if task is None:
            return
        function, arguments, keywords = task
        try:
            function(*arguments, **keywords)
            drawn = True
        except Exception:  # drawn again by the command, where the error is its to report
            drawn = False
        try:
            connection.send(drawn)
        except OSError:  # the command is gone (killed): nothing is left to draw for
            return


def _warm_up() -> None:
    """Import the plotting modules and lay out some text once, so that the first figure asked for is drawn at the
    speed of the others (matplotlib loads its fonts and renderer on first use)."""
    import io

    from matplotlib.figure import Figure

    import mnistlab.reporting.plots  # noqa: F401

    figure = Figure(figsize=(1, 1))
    figure.add_subplot().set_title("0123456789 (%)")
    figure.savefig(io.BytesIO(), format="png")


class FigureHelper:
    """One helper process and the figures sent to it that it has not yet reported on, oldest first."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: PyTorch's threads may be live here
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end,), daemon=True, name="mnistlab-figures")
        # Ctrl-C while the new interpreter starts up would kill it or print its traceback: it starts with SIGINT
        # ignored (an ignored signal stays ignored across exec), as this process is for those few milliseconds
        here = threading.current_thread() is threading.main_thread()  # only the main thread may set a handler
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if here else None
        try:
            self.process.start()
        except BaseException:
            self.connection.close()
            raise
        finally:
            if here:  # None: a handler not set from Python, which cannot be put back; the default stands in
                signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
            child_end.close()
        self.pending: collections.deque[tuple[Callable, tuple, dict]] = collections.deque()

    def draw(self, function: Callable, arguments: tuple, keywords: dict) -> None:
        """Queue the figure for the helper if it has fewer than HELPER_QUEUE waiting, or else draw it here."""
        while self.pending and self.connection.poll():
            self._collect()
        if len(self.pending) < HELPER_QUEUE and self.process.is_alive():
            try:
                self.connection.send((function, arguments, keywords))
            except OSError:  # the helper is gone: this process draws from now on
                self.process.kill()
            except Exception:  # the figure's arguments do not pickle (nothing was sent): drawn here
                pass
            else:
                self.pending.append((function, arguments, keywords))
                return
        function(*arguments, **keywords)

    def finish(self) -> None:
        """Wait for the helper's figures; draw here any it could not."""
        while self.pending:
            self._collect()

    def _collect(self) -> None:
        function, arguments, keywords = self.pending.popleft()
        try:
            drawn = self.connection.recv()
        except (EOFError, OSError):  # the helper died mid-figure
            drawn = False
        if not drawn:
            function(*arguments, **keywords)

    def close(self) -> None:
        """Stop the helper once the figures it was sent are written whole (the command may be failing, or
        interrupted), or kill it if it takes longer than HELPER_EXIT_SECONDS."""
        with contextlib.suppress(EOFError, OSError):
            self.connection.send(None)  # after the figures already sent
            self.process.join(HELPER_EXIT_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


_helper: contextvars.ContextVar[FigureHelper | None] = contextvars.ContextVar("figure_helper", default=None)


@contextlib.contextmanager
def figure_helper() -> Iterator[FigureHelper | None]:
    """Within the block, a helper process draws figures beside this one (see the module docstring); the block gets
    the helper, or None where no process could be started."""
    try:
        helper = FigureHelper()
    except OSError:  # no process could be started (a limit on processes, no memory): everything is drawn here
        helper = None
    if helper is None:
        yield None
        return
    token = _helper.set(helper)
    try:
        yield helper
    finally:
        _helper.reset(token)
        helper.close()


def draw(function: Callable, *arguments, **keywords) -> None:
    """`function(*arguments, **keywords)`, a plot that writes one file: here, or in the helper if one is open and
    has room in its queue."""
    helper = _helper.get()
    if helper is None:
        function(*arguments, **keywords)
    else:
        helper.draw(function, arguments, keywords)


def finish_drawing() -> None:
    """Return once every figure given to `draw` so far is written."""
    helper = _helper.get()
    if helper is not None:
        helper.finish()
