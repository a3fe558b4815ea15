"""An evidence file for docs/evidence/: the exact command, the machine, the raw output and the summary, in one text.

Every script in tests/perf/ takes `--evidence PATH` (removed from its arguments before it parses them): the script
runs as usual, everything it prints is also kept, and PATH is written at the end with four sections:
- command: the command line, relative to the repository root;
- machine: `lscpu` (its first lines), the platform, Python, the load average, torch and the CUDA device if any;
- summary: what the script printed on standard output (its final table);
- raw output: what it printed on standard error (the per-row lines, progress).
"""
from __future__ import annotations

import contextlib
import io
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Tee(io.TextIOBase):
    """Writes to a stream and keeps a copy."""

    def __init__(self, stream):
        self.stream, self.kept = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def machine() -> str:
    lines = []
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        lines += lscpu.splitlines()[:15]
    except (OSError, subprocess.SubprocessError):
        lines.append("lscpu: not available")
    lines += [f"platform: {platform.platform()}", f"python: {platform.python_version()}",
              "load average (1, 5, 15 min, at the end): " + ", ".join(f"{v:.2f}" for v in os.getloadavg())]
    try:
        import torch

        lines.append(f"torch: {torch.__version__}, threads {torch.get_num_threads()}")
        if torch.cuda.is_available():
            lines.append(f"cuda: {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
    except ImportError:
        lines.append("torch: not importable")
    return "\n".join(lines)


def command(argv: list[str]) -> str:
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script.name
    return shlex.join(["python", str(shown), *argv])


def split_option(argv: list[str]) -> tuple[list[str], str]:
    """(argv without `--evidence PATH`, PATH or '')."""
    rest, path, i = [], "", 0
    while i < len(argv):
        if argv[i] == "--evidence" and i + 1 < len(argv):
            path, i = argv[i + 1], i + 2
        elif argv[i].startswith("--evidence="):
            path, i = argv[i].split("=", 1)[1], i + 1
        else:
            rest.append(argv[i])
            i += 1
    return rest, path


def run(main) -> int:
    """Run a script's main() (which parses sys.argv); with `--evidence PATH`, also write the evidence file."""
    argv, path = split_option(sys.argv[1:])
    if not path:
        return main()
    sys.argv[1:] = argv
    out, errs = Tee(sys.stdout), Tee(sys.stderr)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(errs):
        status = main()
    text = (f"# command\n{command(argv)}\n\n# machine\n{machine()}\n\n# exit status\n{status}\n\n"
            f"# summary (standard output)\n{out.kept.getvalue().rstrip()}\n\n"
            f"# raw output (standard error)\n{errs.kept.getvalue().rstrip()}\n")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")
    print(f"Wrote {path}", file=sys.stderr)
    return status
