"""Where a server's CPU goes: py-spy's samples of its workers, summed per function.

``python -m benchmarks.webhook_ingest --profile FILE`` records the workers with py-spy (in the
``dev`` extra) while the events come in and prints this summary; ``python -m benchmarks.stacks
FILE [--per N]`` prints it again from the file (py-spy's raw format: one stack per line, its
frames root first, separated by ``;``, then the number of samples).

Only the thread holding the GIL is sampled (``--gil``): the time a worker runs Python, and C
code that keeps the GIL; SQLite's own work (``sqlite3`` releases the GIL around each statement
and the commit's fsync) is left out, so the per-event figures are below the CPU read from /proc
(both printed). Each line gives a function's share of the samples (inclusive: it and what it
called, counted once per sample) and, with ``--per N``, the GIL-held time per event.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

PY_SPY = str(Path(sys.executable).with_name("py-spy"))
RATE = 200  # samples per second and thread
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(:\d+)?\)$")

# The threads a worker runs, told apart by a frame their stacks hold.
THREADS = (
    ("deliverer", "Deliverer._run ("),
    ("request", "ThreadWorker.handle ("),
    ("gunicorn's main loop", "ThreadWorker.run ("),
)


class Recording:
    """py-spy recording the workers of gunicorn ``master`` into ``path`` until ``stop()``."""

    def __init__(self, master: int, path: Path):
        self.path = path
        self.process = subprocess.Popen(
            [PY_SPY, "record", "--pid", str(master), "--subprocesses", "--format", "raw"]
            + ["--rate", str(RATE), "--gil", "--nonblocking", "--output", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        _, error = self.process.communicate(timeout=60)
        if not self.path.exists():
            raise SystemExit(f"py-spy wrote no profile: {error.decode(errors='replace')[-500:]}")


def _name(frame: str) -> str:
    """``function (file)``: a frame without its line, so each function counts once."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = re.sub(r"^.*?/(middleware|schemas|benchmarks)/", r"\1/", path)
    return f"{match['function']} ({path})"


def read(path: Path) -> tuple[Counter, Counter, Counter, int]:
    """(samples per function, inclusive, each once per stack; per function, its own (the
    innermost frame); per thread kind; all)."""
    functions: Counter = Counter()
    own: Counter = Counter()
    threads: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [frame for frame in stack.split(";") if not frame.startswith("process ")]
        if not frames:
            continue
        own[_name(frames[-1])] += samples
        kind = next((kind for kind, frame in THREADS if frame in stack), "other")
        threads[kind] += samples
        for name in {_name(frame) for frame in frames}:
            functions[name] += samples
    return functions, own, threads, total


def summary(path: Path, *, events: int | None = None, top: int = 40) -> str:
    functions, own, threads, total = read(path)
    if not total:
        return "no samples"

    def share(samples: int) -> str:
        text = f"{samples / total:6.1%}"
        if events:
            text += f" {samples / RATE / events * 1e6:7.0f} us/event"
        return text

    lines = [f"{total} samples at {RATE}/s of the workers' thread holding the GIL"]
    lines += [f"  {share(samples)}  {kind} threads" for kind, samples in threads.most_common()]
    lines.append("functions, inclusive (each counted once per sample):")
    lines += [f"  {share(samples)}  {name}" for name, samples in functions.most_common(top)]
    lines.append("functions, their own time (the innermost frame):")
    lines += [f"  {share(samples)}  {name}" for name, samples in own.most_common(top // 2)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--per", type=int, help="events the recording covers (CPU per event)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--grep", help="only functions whose name contains this")
    options = parser.parse_args()
    if options.grep:
        functions, _, _, total = read(options.file)
        for name, samples in functions.most_common():
            if options.grep in name:
                print(f"{samples / total:6.1%}  {name}")
        return
    print(summary(options.file, events=options.per, top=options.top))


if __name__ == "__main__":
    main()
