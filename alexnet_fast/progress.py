"""Progress of long work on stderr, for `alexnet-fast bench` and `alexnet-fast train`.

On a terminal: a bar (tqdm if installed, else rich). Elsewhere (a log, CI):
one line per item when ``lines`` is set, since a log shows those as they come,
else nothing.
"""
from __future__ import annotations

import importlib.util
import sys
import time


class Progress:
    """``total`` items. ``step(name)`` names the next item (the previous one is
    done); ``update(n, **postfix)`` marks ``n`` items done, showing ``postfix``
    (e.g. the loss) beside the bar. Use as a context manager or call close()."""

    def __init__(self, total: int, description: str = "", *, enabled: bool = True, lines: bool = False):
        self.total, self.done, self.description = total, 0, description
        self._start = time.monotonic()
        self._tqdm = self._rich = None
        self._lines = enabled and lines
        if not enabled or not sys.stderr.isatty():
            return
        if importlib.util.find_spec("tqdm"):
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=total, desc=description, leave=False, dynamic_ncols=True, file=sys.stderr)
        elif importlib.util.find_spec("rich"):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn
            from rich.progress import TimeElapsedColumn

            self._rich = RichProgress(TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._rich.start()
            self._rich_task = self._rich.add_task(description, total=total)
        self._lines = False  # a bar instead

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def step(self, description: str) -> None:
        """Marks the previous item done and names the next."""
        self.description = description
        if self._lines:
            elapsed = time.monotonic() - self._start
            count = f"{self.done + 1:>{len(str(self.total))}}/{self.total}"
            print(f"[{count} {elapsed:4.0f} s] {description}", file=sys.stderr, flush=True)
        self._show(self.done, {})
        self.done += 1

    def update(self, n: int = 1, **postfix) -> None:
        """Marks ``n`` more items done."""
        self.done += n
        self._show(self.done, postfix)

    def _show(self, completed: int, postfix: dict) -> None:
        if self._tqdm is not None:
            self._tqdm.n = completed
            self._tqdm.set_description(self.description, refresh=False)
            if postfix:
                self._tqdm.set_postfix(postfix, refresh=False)
            self._tqdm.refresh()
        elif self._rich is not None:
            extra = "".join(f" {key}={value}" for key, value in postfix.items())
            self._rich.update(self._rich_task, completed=completed, description=self.description + extra)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.n = self.done
            self._tqdm.close()
            self._tqdm = None
        elif self._rich is not None:
            self._rich.stop()
            self._rich = None
