"""A one-line progress bar on stderr, drawn only when stderr is a terminal."""
from __future__ import annotations

import sys


class Progress:
    def __init__(self, label: str, total: int, stream=None, width: int = 30, enabled: bool = True):
        self.label, self.total, self.width, self.done = label, max(total, 1), width, 0
        self.stream = stream if stream is not None else sys.stderr
        # Logs and pipes get no carriage-return noise; a terminal gets the bar.
        self.enabled = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()

    def __enter__(self):
        self._draw()
        return self

    def update(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        fill = self.width * self.done // self.total
        self.stream.write(f"\r{self.label} [{'#' * fill}{'.' * (self.width - fill)}] {self.done}/{self.total}")
        self.stream.flush()

    def __exit__(self, *exc):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
