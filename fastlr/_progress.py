"""Progress of long passes: a tqdm bar on a terminal, plain log lines elsewhere.

A streamed fit reports each pass over the data (rows/s, MB/s, ETA) and each
solver iteration (loss, gradient norm). On a terminal the passes are tqdm
bars and the iterations lines printed above them; when the output is a file
or a pipe (a job log), every pass gives one line when it ends, and one every
``interval`` seconds while it runs, so a log stays readable.
"""

import sys
import time


class Progress:
    """Where and how a fit reports its progress.

    Parameters
    ----------
    file : file-like, default=sys.stderr
    interactive : bool, optional
        Draw tqdm bars; default: whether ``file`` is a terminal.
    interval : float, default=10.0
        Seconds between two log lines of a running pass (non-interactive).
    """

    def __init__(self, file=None, interactive=None, interval=10.0):
        self.file = sys.stderr if file is None else file
        if interactive is None:
            isatty = getattr(self.file, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self.interval = interval

    def pass_bar(self, description, total, unit="rows"):
        """A bar (or log) for one pass over ``total`` rows (or bytes, ``unit="B"``).

        Use it as a context manager; ``update(count, nbytes=0)`` advances it.
        ``total`` may be None when unknown.
        """
        if self.interactive:
            return _TqdmPass(description, total, self.file, unit)
        return _LoggedPass(description, total, self.file, self.interval, unit)

    def line(self, text):
        """Print one line without breaking a bar that is being drawn."""
        if self.interactive:
            from tqdm import tqdm

            tqdm.write(text, file=self.file)
        else:
            print(text, file=self.file, flush=True)


def _rate_text(rows, nbytes, seconds):
    seconds = max(seconds, 1e-9)
    text = f"{_si(rows / seconds)} rows/s"
    if nbytes:
        text += f", {_bytes_text(nbytes / seconds)}/s"
    return text


def _bytes_text(nbytes):
    """``nbytes`` in decimal units, three digits: "3.46 kB", "118 MB"."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} B"


def _si(value):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


class _TqdmPass:
    """One pass drawn as a tqdm bar: rows, rows/s, MB/s and ETA."""

    def __init__(self, description, total, file, unit):
        from tqdm import tqdm

        self.bar = tqdm(
            total=total, desc=description, unit=unit, unit_scale=True, file=file, leave=False,
            dynamic_ncols=True, unit_divisor=1024 if unit == "B" else 1000,
        )  # fmt: skip
        self.n = 0
        self.nbytes = 0
        self.start = time.perf_counter()

    def update(self, count, nbytes=0):
        self.n += count
        self.nbytes += nbytes
        self.bar.update(count)
        if nbytes:
            seconds = max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_postfix_str(f"{_bytes_text(self.nbytes / seconds)}/s", refresh=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()
        return False


class _LoggedPass:
    """One pass reported as log lines: while it runs (every ``interval`` s) and at its end."""

    def __init__(self, description, total, file, interval, unit):
        self.description, self.total, self.file = description, total, file
        self.interval, self.unit = interval, unit
        self.n = self.nbytes = 0
        self.start = self.last = time.perf_counter()

    def update(self, count, nbytes=0):
        self.n += count
        self.nbytes += count if self.unit == "B" else nbytes
        now = time.perf_counter()
        if now - self.last >= self.interval and self.total and self.n < self.total:
            self.last = now
            elapsed = now - self.start
            eta = elapsed * (self.total - self.n) / max(self.n, 1)
            print(
                f"{self.description}: {100 * self.n / self.total:.0f}% of {self._amount()}, "
                f"{self._rate(elapsed)}, ETA {eta:.0f} s",
                file=self.file,
                flush=True,
            )

    def _amount(self):
        if self.unit == "B":
            return _bytes_text(self.total)
        return f"{self.total:,} {self.unit}"

    def _rate(self, elapsed):
        if self.unit == "B":
            return f"{_bytes_text(self.nbytes / max(elapsed, 1e-9))}/s"
        return _rate_text(self.n, self.nbytes, elapsed)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            elapsed = time.perf_counter() - self.start
            done = _bytes_text(self.nbytes) if self.unit == "B" else f"{self.n:,} {self.unit}"
            print(
                f"{self.description}: {done} in {elapsed:.2f} s, {self._rate(elapsed)}",
                file=self.file,
                flush=True,
            )
        return False
