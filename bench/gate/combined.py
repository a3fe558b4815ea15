"""Time and instruction counts combined: the rule of `compare --metric auto` (the default) for a row whose two sides
both carry instruction counts (results.csv `instructions`, from `--metric instructions`).

Counts are deterministic (the same code gives the same count within a fraction of a percent), so they resolve a
change far below what time can on a small row; but they see only instructions, not what an instruction costs (a
non-contiguous input, a layout that misses the cache). So for each row:
- counts `slower` -> slower, whatever time says (time may be unsure: the counts are the evidence);
- time `slower` -> slower even where the counts did not move (a cache or layout cost); the reason says so;
- counts `faster` -> faster (time did not say slower);
- counts `same`: time `same` -> same; time `faster` -> faster (counts did not move); time `unsure` -> same, with
  the reason "instructions +x.xx%; time unsure (...): counts cannot see cache or layout changes";
- a row without counts on a side (CUDA rows) -> the time verdict alone (bench.gate.rule.decide or decide_paired).
The time rule and the count rule are bench.gate.rule's (decide / decide_paired and decide_count), unchanged.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotations only: this module imports nothing of bench at run time
    from bench.gate.rule import Figures

NOT_SEEN = "counts cannot see cache or layout changes"


def decide_combined(time: tuple[str, str, Figures], count: tuple[str, str, Figures]) -> tuple[str, str]:
    """The verdict and reason of a row from its time verdict (verdict, reason, figures) and its instruction-count
    verdict (bench.gate.rule.decide_count's), by the rule of the module."""
    (tv, tr, _), (cv, cr, cf) = time, count
    if cv == "unsure":  # no count on a side: time alone
        return tv, tr
    moved = f"instructions {cf.ratio - 1:+.2%}"
    if cv == "slower":
        return "slower", f"{cr}; time {tv}: {tr}"
    if tv == "slower":
        return "slower", f"time {tr}; {moved}: the counts did not move ({NOT_SEEN})"
    if cv == "faster":
        return "faster", f"{cr}; time {tv}: {tr}"
    if tv in ("same", "faster"):
        return tv, f"time {tr}; {moved}"
    return "same", f"{moved}; time unsure ({tr}): {NOT_SEEN}"
