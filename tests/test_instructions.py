"""`--metric instructions` pieces that run without valgrind: the Counter's schedule (a fake client-request library
and a fake clock) and the counting workers' allocator (compiled and preloaded into a real interpreter)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.measure import instructions
from bench.measure.instructions import ALLOCATOR, FLAGS, Counter, counter_environ


class FakeCallgrind:
    """The client requests of bench.measure.instructions, kept as a log; a dump writes the instructions counted
    since the last zero (each counted call of fn costs what `cost` says) in callgrind's format."""

    def __init__(self, out_dir: Path, log: list) -> None:
        self.out_dir, self.log = out_dir, log
        self.collecting, self.counted, self.dumps = False, 0, 0

    def bench_cg_start(self):
        self.log.append("start")

    def bench_cg_stop(self):
        self.log.append("stop")

    def bench_cg_zero(self):
        self.counted = 0

    def bench_cg_toggle(self):
        self.collecting = not self.collecting
        self.log.append("on" if self.collecting else "off")

    def bench_cg_dump(self):
        self.dumps += 1
        (self.out_dir / f"callgrind.out.1.{self.dumps}").write_text(f"events: Ir\nsummary: {self.counted}\n")


def counter(tmp_path: Path, log: list) -> Counter:
    c = Counter.__new__(Counter)  # no ctypes library: the fake stands in for it
    c.lib, c.out_dir = FakeCallgrind(tmp_path, log), tmp_path
    return c


def test_per_call_warms_up_outside_instrumentation_then_takes_the_median_batch(tmp_path):
    """warmup_calls uncounted calls before instrumentation starts, one instrumented uncounted call, then `calls` in
    `batches` collected batches; the count per call is the median batch's (a one-time spike is left out), and the
    dumps are removed."""
    log: list = []
    c = counter(tmp_path, log)
    costs = iter([100] * 12 + [5_000] + [100] * 7)  # the fourth batch holds one expensive call

    def fn():
        log.append("call")
        if c.lib.collecting:
            c.lib.counted += next(costs)

    per_call = c.per_call(fn, calls=20, batches=5, warmup_calls=7, warmup_s=60.0)
    assert log[:8] == ["call"] * 7 + ["start"]
    assert log[8] == "call" and log[-1] == "stop"
    batches = " ".join(log[9:-1]).split("off")
    assert [b.split().count("call") for b in batches[:-1]] == [4] * 5
    assert per_call == 100.0  # the median batch; the mean would be 345
    assert not list(tmp_path.glob("callgrind.out.*"))


def test_per_call_warm_up_stops_at_its_time_limit(tmp_path, monkeypatch):
    """A slow row's warm-up ends once warmup_s has passed (a fake clock: 1 s per call), not after warmup_calls."""
    clock = iter(range(1000))
    monkeypatch.setattr(instructions.time, "perf_counter", lambda: float(next(clock)))
    log: list = []
    c = counter(tmp_path, log)
    c.per_call(lambda: log.append("call"), calls=5, batches=5, warmup_calls=1000, warmup_s=3.0)
    assert log.index("start") == 4  # calls at t = 1, 2, 3, 4: the fourth is past 3 s


def test_per_call_says_when_no_dump_came(tmp_path):
    """Outside valgrind the client requests do nothing: no dumps, and the error says where to look."""
    c = counter(tmp_path, [])
    c.lib.bench_cg_dump = lambda: None
    with pytest.raises(RuntimeError, match="callgrind wrote no dump"):
        c.per_call(lambda: None, calls=5, batches=5, warmup_calls=0)


def test_counting_workers_get_the_seed_their_padding_and_the_allocator(tmp_path):
    lib = tmp_path / "lib.so"
    envs = [dict(counter_environ(i, lib)) for i in range(3)]
    assert [len(e["BENCH_LAYOUT_PAD"]) for e in envs] == [0, instructions.PAD_BYTES, 2 * instructions.PAD_BYTES]
    assert all(e["PYTHONHASHSEED"] == "0" and e["LD_PRELOAD"] == str(lib) and e["PYTHONMALLOC"] == "malloc"
               for e in envs)


PROBE = r"""
import ctypes, sys
import torch

lib = ctypes.CDLL(sys.argv[1])
libc = ctypes.CDLL(None)
addr = lambda f: ctypes.cast(f, ctypes.c_void_p).value
assert addr(libc.malloc) == addr(lib.malloc) and addr(libc.free) == addr(lib.free), "malloc is not the preloaded one"
for name in ("malloc", "calloc", "realloc", "memalign", "aligned_alloc", "valloc", "pvalloc"):
    getattr(libc, name).restype = ctypes.c_void_p
libc.realloc.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
libc.free.argtypes = (ctypes.c_void_p,)
libc.malloc_usable_size.argtypes = (ctypes.c_void_p,)
libc.malloc_usable_size.restype = ctypes.c_size_t

blocks = []
for size in (0, 1, 15, 16, 17, 1000, 1024, 1025, 5000, 1 << 20, (64 << 20) + 3):
    p = libc.malloc(ctypes.c_size_t(size))
    assert p and p % 16 == 0, (size, p)
    assert libc.malloc_usable_size(p) >= size
    ctypes.memset(p, 0xAB, size)
    blocks.append(p)
for p in blocks:
    libc.free(p)
assert libc.malloc(ctypes.c_size_t(1 << 20)) == blocks[9], "the last freed block of its class is reused first"
assert not libc.malloc(ctypes.c_size_t(1 << 62)) and not libc.malloc(ctypes.c_size_t(2**64 - 1))
try:
    bytearray(1 << 62)
except MemoryError:
    pass
else:
    raise AssertionError("a 4 EiB bytearray was allocated")

for align in (32, 64, 4096):
    out = ctypes.c_void_p()
    assert libc.posix_memalign(ctypes.byref(out), ctypes.c_size_t(align), ctypes.c_size_t(100)) == 0
    assert out.value % align == 0 and libc.malloc_usable_size(out.value) >= 100
    libc.free(out.value)
assert libc.posix_memalign(ctypes.byref(ctypes.c_void_p()), ctypes.c_size_t(24), ctypes.c_size_t(8)) == 22  # EINVAL
assert libc.memalign(ctypes.c_size_t(48), ctypes.c_size_t(10)) % 64 == 0  # rounded up to a power of two
assert libc.aligned_alloc(ctypes.c_size_t(128), ctypes.c_size_t(256)) % 128 == 0
assert not libc.aligned_alloc(ctypes.c_size_t(1 << 40), ctypes.c_size_t(8))
assert libc.valloc(ctypes.c_size_t(10)) % 4096 == 0 and libc.pvalloc(ctypes.c_size_t(10)) % 4096 == 0

c = libc.calloc(ctypes.c_size_t(1000), ctypes.c_size_t(8))
assert ctypes.string_at(c, 8000) == bytes(8000)
p = libc.malloc(ctypes.c_size_t(10))
ctypes.memmove(p, b"0123456789", 10)
q = libc.realloc(p, ctypes.c_size_t(100000))
assert ctypes.string_at(q, 10) == b"0123456789"
assert libc.realloc(q, ctypes.c_size_t(5)) == q  # shrinking keeps the block
assert libc.realloc(None, ctypes.c_size_t(8))

torch.manual_seed(0)
m = torch.nn.Conv2d(3, 8, 3, padding=1)
x = torch.randn(4, 3, 16, 16)
torch.save({"y": m(x).detach(), "big": torch.arange(1 << 22, dtype=torch.float64).sum()}, sys.argv[2])
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_the_counting_allocator_serves_a_real_interpreter(tmp_path):
    """counting_malloc.c, compiled as build_library compiles it and preloaded with PYTHONMALLOC=malloc as the counting
    workers run: the C entry points keep their contracts (alignment, usable size, calloc zeroes, realloc keeps the
    bytes, free lists reused) and torch computes the same conv as under glibc's malloc."""
    lib = tmp_path / "libcountingmalloc.so"
    subprocess.run([shutil.which("cc"), *FLAGS, "-o", str(lib), str(ALLOCATOR)], check=True)
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(PROBE))
    env = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": str(lib), "PYTHONMALLOC": "malloc"}
    done = subprocess.run([sys.executable, str(probe), str(lib), str(tmp_path / "with.pt")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    import torch

    torch.manual_seed(0)
    m = torch.nn.Conv2d(3, 8, 3, padding=1)
    got = torch.load(tmp_path / "with.pt")
    assert torch.equal(got["y"], m(torch.randn(4, 3, 16, 16)).detach())
    assert got["big"].item() == (1 << 22) * ((1 << 22) - 1) / 2
