"""`python -m bench`: the command line. Ctrl-C and SIGTERM raise KeyboardInterrupt from the first line on, before
anything heavy is imported, so that a signal at any moment ends in one line and exit 130 (bench.cli.main's exit
table); bench.cli.main.main then takes them over."""
import signal
import sys

_received = []


def _on_signal(signum, frame):
    _received.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


for _signum in (signal.SIGINT, signal.SIGTERM):
    if signal.getsignal(_signum) is not signal.SIG_IGN:
        signal.signal(_signum, _on_signal)
try:
    from bench.cli.main import main
except BaseException as exc:  # a signal while importing can surface as another exception (see bench.cli.main)
    if not (_received or isinstance(exc, KeyboardInterrupt)):
        raise
    sys.stderr.write("interrupted\n")
    sys.exit(130)
sys.exit(main())
