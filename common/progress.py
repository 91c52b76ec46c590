"""A one-line progress bar with an ETA, on stderr.

    step 120/263 [#########...........]  46% | loss 0.412 | 812 tok/s | 3m05s left

On a terminal the line is redrawn in place; in a log file (not a tty) a plain line is written
at most every `log_seconds`, so logs stay readable. The ETA is the mean time per step since this
process started, times the steps left (a resumed run does not count the steps it skipped).
"""
import sys
import time

from common import distributed

BAR_WIDTH = 20


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class Progress:
    def __init__(self, total: int, start: int = 0, stream=None, log_seconds: float = 30.0):
        self.total, self.start = total, start
        # Under torchrun only rank 0 draws the bar: the others write to their stdout, /dev/null there.
        self.stream = stream or (sys.stderr if distributed.rank() == 0 else sys.stdout)
        self.interactive = self.stream.isatty()
        self.log_seconds = log_seconds
        self.began = self.last_logged = time.perf_counter()
        self.line = ""

    def update(self, step: int, info: str = "") -> None:
        now = time.perf_counter()
        share = step / max(1, self.total)
        filled = int(BAR_WIDTH * share)
        parts = [f"step {step}/{self.total} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {100 * share:3.0f}%"]
        if info:
            parts.append(info)
        if self.start < step < self.total:
            parts.append(f"{format_duration((now - self.began) / (step - self.start) * (self.total - step))} left")
        self.line = " | ".join(parts)
        if self.interactive:
            self.stream.write("\r\033[K" + self.line)
            self.stream.flush()
        elif now - self.last_logged >= self.log_seconds or step == self.total:
            self.stream.write(self.line + "\n")
            self.last_logged = now

    def print(self, message: str) -> None:
        """Print a line to stdout without garbling the bar."""
        if self.interactive and self.line:
            self.stream.write("\r\033[K")
        print(message, flush=True)
        if self.interactive and self.line:
            self.stream.write(self.line)
            self.stream.flush()

    def close(self) -> None:
        if self.interactive and self.line:
            self.stream.write("\n")
            self.stream.flush()


class Log:
    """Print a message and append it to a log file (eval.log, improve.log)."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self, message: str) -> None:
        print(message, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(message + "\n")
