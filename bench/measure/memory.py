"""Memory a row may use: what the device can still give, within every limit the process lives under.

On the CPU that is the least of MemAvailable (/proc/meminfo), the cgroup v2 and v1 limits of the process's
own cgroup and its parents (limit minus usage), and the address-space limit (RLIMIT_AS minus the current
virtual size). On CUDA, cudaMemGetInfo. The file system root is a parameter so tests build fake /proc and /sys.
"""
from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path

import torch

try:
    import resource
except ImportError:  # Windows has no resource module: no address-space limit to read
    resource = None


NO_LIMIT = 1 << 62  # what free_bytes says when nothing at all can be read
CGROUP_V1_UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a huge number (9223372036854771712 on 4 KiB pages)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _mem_available(root: Path) -> int | None:
    """MemAvailable from /proc/meminfo: it counts reclaimable page cache, which MemFree (SC_AVPHYS_PAGES) does not."""
    try:
        for line in (root / "proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_dirs(root: Path, mount: Path, match: Callable[[str], bool]) -> list[Path]:
    """The process's cgroup directory under `mount` and every ancestor up to `mount` itself (each may set a limit),
    from the /proc/self/cgroup line `match` picks; only `mount` when that file says nothing. Missing ones are left
    out."""
    rel = ""
    try:
        for line in (root / "proc/self/cgroup").read_text(encoding="ascii").splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3 and match(parts[1]):
                rel = parts[2].strip().strip("/")
                break
    except OSError:
        pass
    dirs = [mount]
    for part in rel.split("/") if rel else []:
        dirs.append(dirs[-1] / part)
    return [d for d in dirs if d.is_dir()]


def _cgroup_v2(root: Path) -> list[int]:
    """memory.max minus memory.current at each level of the cgroup v2 hierarchy that sets a limit ("max": none)."""
    mount = root / "sys/fs/cgroup"
    out = []
    for d in _cgroup_dirs(root, mount, lambda controllers: controllers == ""):
        try:
            limit = (d / "memory.max").read_text(encoding="ascii").strip()
        except OSError:
            continue
        used = _read_int(d / "memory.current")
        if limit != "max" and limit.isdigit() and used is not None:
            out.append(int(limit) - used)
    return out


def _cgroup_v1(root: Path) -> list[int]:
    """memory.limit_in_bytes minus memory.usage_in_bytes at each level of the cgroup v1 memory hierarchy that sets
    a limit (a huge value: none)."""
    mount = root / "sys/fs/cgroup/memory"
    out = []
    for d in _cgroup_dirs(root, mount, lambda controllers: "memory" in controllers.split(",")):
        limit, used = _read_int(d / "memory.limit_in_bytes"), _read_int(d / "memory.usage_in_bytes")
        if limit is not None and used is not None and limit < CGROUP_V1_UNLIMITED:
            out.append(limit - used)
    return out


def _address_space(root: Path) -> list[int]:
    """RLIMIT_AS (soft) minus the process's current virtual size (/proc/self/statm, in pages); none when unlimited."""
    if resource is None:
        return []
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft == resource.RLIM_INFINITY or soft < 0:
        return []
    pages = _read_int(root / "proc/self/statm")
    if pages is None:  # no statm: the limit itself is still a bound
        return [soft]
    return [soft - pages * resource.getpagesize()]


def free_bytes(device: str, *, root: Path = Path("/")) -> int:
    """Memory the device can still give.

    CUDA: cudaMemGetInfo. CPU: the minimum of every bound that applies: MemAvailable (/proc/meminfo, else
    SC_AVPHYS_PAGES), a cgroup v2 memory.max minus memory.current and a cgroup v1 memory.limit_in_bytes minus
    memory.usage_in_bytes (the process's cgroup and each ancestor, as /proc/self/cgroup names it), and the
    address-space limit RLIMIT_AS minus the current virtual size. Never below 0. `root` is where /proc and /sys
    are read (tests pass a fake tree).
    """
    if device == "cuda":
        return int(torch.cuda.mem_get_info()[0])
    bounds = _cgroup_v2(root) + _cgroup_v1(root) + _address_space(root)
    available = _mem_available(root)
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = None
    if available is not None:
        bounds.append(available)
    return max(0, min(bounds)) if bounds else NO_LIMIT


# ---------------------------------------------------------------- the memory a row really held
def _status_kib(root: Path, field: str) -> int | None:
    """A "VmRSS:   1234 kB" field of /proc/self/status, in bytes."""
    try:
        for line in (root / "proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _trim() -> None:
    """glibc's malloc_trim(0): free heap pages back to the system (a no-op elsewhere)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakTracker:
    """The memory a row holds at its peak, measured around it, to set beside the planned estimate.

    CUDA: the caching allocator's peak (torch.cuda.max_memory_allocated, reset first) less what was allocated
    before the row was built. CPU: the growth of the process's resident set, its high-water mark (VmHWM) less its
    resident size (VmRSS) before the row was built; the mark is reset through /proc/self/clear_refs (Linux 4.0
    and later) once the row is built, so the float64 reference copy made before timing is not counted. Counted
    on the CPU: pages touched (a tensor allocated but never written is not resident), memory glibc keeps after a
    free, and Python's own objects. None where it cannot be read (not Linux, no /proc). `root` is where /proc is
    read and written (tests pass a fake tree)."""

    def __init__(self, device: str, *, root: Path = Path("/")) -> None:
        self.device, self.root = device, root
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            _trim()  # memory freed by earlier rows goes back to the system, or this row would reuse it unseen
            self.base = _status_kib(root, "VmRSS")

    def restart(self) -> None:
        """The row is built: from here on the peak is the row's (CPU: the high-water mark reset to now)."""
        if self.device == "cuda":
            return  # the reference is made on the CPU: nothing on the device to forget
        try:
            (self.root / "proc/self/clear_refs").write_text("5", encoding="ascii")
        except OSError:
            self.base = None  # the mark would include everything before: better no figure than a wrong one

    def peak_bytes(self) -> int | None:
        if self.device == "cuda":
            return max(0, torch.cuda.max_memory_allocated() - self.base)
        high = _status_kib(self.root, "VmHWM")
        return None if high is None or self.base is None else max(0, high - self.base)
