"""CPU instructions per call, counted by callgrind: a deterministic metric for CPU rows (`--metric instructions`).

Wall time on a shared runner moves by percents between processes; an instruction count of the same binary and
inputs, with the sources of drift below held still, does not (docs/gate.md, "Instructions").
torch.utils.benchmark's Timer.collect_callgrind starts a valgrind'ed interpreter per measurement with
instrumentation on from the start, so each collection pays for importing torch under instrumentation, which takes
minutes. Instead one worker process runs the whole suite under `valgrind --tool=callgrind --instr-atstart=no
--collect-atstart=no`, and switches instrumentation and collection on around the measured calls only, through
callgrind's client requests. Those are macros of <valgrind/callgrind.h> (inline machine code, not functions), so a
five-line C file is compiled once into a small shared library and called through ctypes: torch exposes only the
collection toggle, not instrumentation.

The same library is the worker's allocator (counting_malloc.c, preloaded, with PYTHONMALLOC=malloc so Python's
objects use it too): glibc's malloc costs what its heap's history makes it cost, so a Conv2d's count would move
from one batch to the next; this allocator's cost does not depend on what came before.
"""
from __future__ import annotations

import ctypes
import gc
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.errors import BenchError, Problem

SOURCE = """#include <valgrind/callgrind.h>
void bench_cg_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void bench_cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void bench_cg_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void bench_cg_zero(void) { CALLGRIND_ZERO_STATS; }
void bench_cg_dump(void) { CALLGRIND_DUMP_STATS; }
"""
ALLOCATOR = Path(__file__).with_name("counting_malloc.c")
# -fno-builtin: GCC would compile calloc's malloc + memset into a call to calloc, itself
FLAGS = ("-shared", "-fPIC", "-O2", "-fno-builtin")
# Python randomizes str hashes per process, so dict and set probes, and with them the count, differ from one
# process to the next; with the seed fixed they do not.
HASH_SEED = "0"
# With the seed fixed, a count still depends on the process: CPython caches attribute lookups in a table indexed by
# the name's address and the type's version tag (handed out in the order types are first looked up), and two hot
# lookups that share a slot evict each other on every call (find_name_in_mro, dict probes). Which lookups collide
# changes from one worker to the next, so each row is counted in LAYOUTS workers (each with its own environment
# padding, the same paddings on both sides of `bench ab`), and its count is the lowest: collisions only add
# instructions. Two layouts run at once on two cores, so a side's counting costs one worker's time; with the
# workers at one thread the layouts' counts agree closely (docs/gate.md, "Instructions", and its evidence;
# tests/perf/instructions_eval.py measures how far apart they are on a machine).
LAYOUTS = 2
PAD_BYTES = 1187  # layout i pads the environment with i * PAD_BYTES bytes (not a multiple of any alignment)
CALLS = 100  # calls counted per row (after one instrumented, uncounted call that translates the code paths)
# ...in BATCHES batches, each dumped, the row's count the median batch's: a one-time event inside the counted calls
# (a new allocator arena, a dict resized, glibc consolidating its free lists) costs thousands of instructions once,
# enough to move a small row's count in a single batch; the median of the batches leaves it out.
BATCHES = 5
# Before them, WARMUP_CALLS uncounted calls (at most WARMUP_S seconds of them) outside instrumentation: Python 3.11
# specializes its bytecode as it runs, and retries a failed specialization after 1, 3, 7 ... 4095 executions, so
# the first few hundred calls of a row cost more than the next and the cost settles in steps. The timer's own calls
# are too few (as many as the speed of the moment asks for) to get past them. Rows slow enough to reach WARMUP_S
# first do millions of instructions a call, where those steps are nothing.
WARMUP_CALLS = 1000
WARMUP_S = 5.0


def _refuse(found: str) -> BenchError:
    return BenchError(Problem(where="run", field="--metric instructions",
                              expected="valgrind with its callgrind.h (Debian/Ubuntu: apt install valgrind) and a C "
                                       "compiler (cc)", found=found))


def build_library(folder: Path) -> Path:
    """Compile the client-request library into folder (once per source); BenchError naming what is missing."""
    if shutil.which("valgrind") is None:
        raise _refuse("no valgrind on PATH")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise _refuse("no C compiler (cc) on PATH")
    digest = hashlib.sha1("\0".join((SOURCE, ALLOCATOR.read_text(), *FLAGS)).encode()).hexdigest()[:8]
    path = folder / f"libbenchcg-{digest}.so"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    # built under names of this process's own and renamed into place at once: two runs starting together on a
    # fresh machine each compile, and neither's worker loads a library half written by the other
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        source, built = Path(scratch) / "benchcg.c", Path(scratch) / path.name
        source.write_text(SOURCE)
        done = subprocess.run([compiler, *FLAGS, "-o", str(built), str(source), str(ALLOCATOR)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise _refuse(lines[0] if lines else f"{compiler} exited {done.returncode}")
        os.replace(built, path)
    return path


def launcher(out_dir: Path) -> tuple[str, ...]:
    """The command a worker's interpreter runs under: callgrind with instrumentation and collection off."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise _refuse("no valgrind on PATH")
    return (valgrind, "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no", "--dump-instr=no",
            "--dump-line=no", f"--callgrind-out-file={out_dir}/callgrind.out.%p", "--quiet")


def counter_environ(layout: int, library: Path) -> tuple[tuple[str, str], ...]:
    """The variables a counting worker of layout `layout` (0, 1, ...) gets: the fixed hash seed, its padding, and
    `library` (build_library's) preloaded as the allocator of everything, Python's objects included."""
    return (("PYTHONHASHSEED", HASH_SEED), ("BENCH_LAYOUT_PAD", "x" * (layout * PAD_BYTES)),
            ("LD_PRELOAD", str(library)), ("PYTHONMALLOC", "malloc"))


def default_folder() -> Path:
    return Path(tempfile.gettempdir()) / "bench-callgrind"


def total_instructions(dump: Path) -> int:
    """The `summary:` (or `totals:`) count of the Ir event in a callgrind dump."""
    text = dump.read_text(errors="replace")
    match = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"{dump}: no summary line")
    return int(match.group(1))


class Counter:
    """Counts the instructions of calls, inside a worker that runs under `launcher`'s callgrind."""

    def __init__(self, library: str, out_dir: str) -> None:
        self.lib = ctypes.CDLL(library)
        self.out_dir = Path(out_dir)

    def _dumps(self) -> set[Path]:
        return set(self.out_dir.glob("callgrind.out.*"))

    def per_call(self, fn, calls: int = CALLS, batches: int = BATCHES, warmup_calls: int = WARMUP_CALLS,
                 warmup_s: float = WARMUP_S) -> float:
        """Instructions per call of fn: `warmup_calls` uncounted calls (fewer if they last over `warmup_s`), then
        instrumentation on, one uncounted call, then `calls` counted ones in `batches` batches, each dumped; the
        median batch's count per call."""
        per_batch = max(calls // batches, 1)
        started = time.perf_counter()
        for _ in range(warmup_calls):
            fn()
            if time.perf_counter() - started > warmup_s:
                break
        before = self._dumps()
        gc.collect()
        enabled = gc.isenabled()
        gc.disable()  # a collection inside the counted calls would add thousands of instructions to one row's count
        self.lib.bench_cg_start()
        try:
            fn()
            for _ in range(batches):  # nothing else between batches: reading a dump here would move the allocator
                self.lib.bench_cg_zero()
                self.lib.bench_cg_toggle()
                for _ in range(per_batch):
                    fn()
                self.lib.bench_cg_toggle()
                self.lib.bench_cg_dump()
        finally:
            self.lib.bench_cg_stop()
            if enabled:
                gc.enable()
        new = sorted(self._dumps() - before, key=lambda p: p.stat().st_mtime_ns)
        if len(new) < batches:
            raise RuntimeError("callgrind wrote no dump: is this worker running under valgrind --tool=callgrind?")
        counts = [total_instructions(p) / per_batch for p in new[-batches:]]
        for p in new:
            p.unlink()
        return statistics.median(counts)
