"""A Comparison as text: a console table, a Markdown report for a pull-request comment, and a plot of
the ratios with their intervals. Pure formatting: these return strings or a figure; the CLI writes them.
"""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # below matplotlib.use("Agg")
import pandas as pd  # below matplotlib.use("Agg")
from matplotlib.ticker import FuncFormatter  # below matplotlib.use("Agg")

from bench.gate.compare import EMPTY, FEW, MACHINE, STATUS, Comparison, Verdict  # below matplotlib.use("Agg")
from bench.gate.rule import VERDICTS, Figures  # below matplotlib.use("Agg")
from bench.store.cells import md_text, mpl_text  # below matplotlib.use("Agg")
from bench.store.files import write_atomic  # below matplotlib.use("Agg")
from bench.units import fmt_s  # below matplotlib.use("Agg")

MARK = {"slower": "🔴 slower", "faster": "🟢 faster", "same": "same", "unsure": "⚪ unsure", "changed": "🔶 changed"}
COLORS = {"slower": "#d62728", "faster": "#2ca02c", "same": "#7f7f7f", "unsure": "#ff7f0e", "changed": "#9467bd"}


def _change(f: Figures) -> str:
    """The ratio as a change with its interval: "+12.0% [+8.1%, +15.2%]", "-" without one."""
    if not f.known:
        return "-"
    return f"{f.ratio - 1:+.1%} [{f.ratio_low - 1:+.1%}, {f.ratio_high - 1:+.1%}]"


def _detectable(v: Verdict) -> str:
    return "-" if v.detectable_ratio == float("inf") else f"{v.detectable_ratio - 1:+.1%}"


def resolution(v: Verdict, cmp: Comparison) -> str:
    """What would resolve an unsure row, by its cause: more processes (pairs) for too few, a quieter runner for a row
    the machine decided, instruction counts for a CPU row without them whose noise hides the threshold."""
    unit, least = ("pairs", cmp.rule.min_pairs) if cmp.paired else ("processes", cmp.rule.min_processes)
    if v.cause == FEW:
        return f"more {unit} (--processes {least} or more)"
    if v.cause == MACHINE:
        return "a quieter runner"
    if v.cause == EMPTY:
        return ("instruction counts on both sides (--metric instructions)" if cmp.metric == "instructions"
                else "samples on both sides (run the row on both)")
    if v.cause == STATUS:
        return "a row that runs on both sides"
    if v.ratio_high < 1 + v.threshold:  # the interval rules the slowdown out: only a speedup is left open
        return f"nothing for a gate against slowdowns (a {v.threshold:.0%} slowdown is ruled out; a speedup is not)"
    more = f"more {unit} (--processes {2 * max(v.n_baseline, v.n_candidate, least)})"
    if v.device == "cpu" and v.count_ratio != v.count_ratio and v.detectable_ratio > 1 + v.threshold:
        return f"instruction counts (valgrind; CI_METRIC=instructions), or {more}"
    return f"{more} or a quieter runner"


def attention(cmp: Comparison, *, markdown: bool = False) -> list[str]:
    """The rows to look at, one line each: `changed` rows, then the rows this job could not judge, then the rows
    unsure by noise, each with the smallest change it could have detected and what would resolve it."""
    text = md_text if markdown else str
    out = [f"changed: {text(v.label)}: {text(v.reason)}" for v in cmp.changed]
    unsure = [v for v in cmp.verdicts if v.verdict == "unsure"]
    for v in sorted(unsure, key=lambda v: v.judged):  # the rows not judged first
        could = _detectable(v)
        could = "nothing" if could == "-" else f"{could} and more"
        head = "NOT JUDGED" if not v.judged else "unsure"
        out.append(f"{head}: {text(v.label)} ({text(v.cause)}): could detect {could}; would resolve: "
                   f"{text(resolution(v, cmp))}")
    return out


def verdict_line(cmp: Comparison) -> str:
    """The verdict in one plain line, as the exit status says it."""
    if cmp.slower:
        return f"SLOWER: {len(cmp.slower)} row(s) slower ({', '.join(v.label for v in cmp.slower[:3])}): exit 1"
    if cmp.unjudged:
        causes = pd.Series([v.cause for v in cmp.unjudged]).value_counts()
        why = ", ".join(f"{n} {cause}" for cause, n in causes.items())
        fixes = sorted({resolution(v, cmp) for v in cmp.unjudged})
        return (f"NOT A VERDICT: {len(cmp.unjudged)} row(s) could not be judged ({why}); would resolve: "
                f"{'; '.join(fixes)}: exit 2")
    return f"PASS: no row slower ({counts(cmp)}): exit 0"


def _p(f: Figures) -> str:
    return "-" if f.p_value != f.p_value else f"{f.p_value:.2g}"


def table(cmp: Comparison, *, marks: bool = False) -> pd.DataFrame:
    """One row per verdict: the row, both medians, the change with its interval, the threshold used; with
    instruction counts combined (--metric auto), the change in instructions beside the change in time."""
    frame = pd.DataFrame([{
        "row": v.label, "verdict": MARK[v.verdict] if marks else v.verdict,
        "baseline": fmt_s(v.baseline_median_s), "candidate": fmt_s(v.candidate_median_s),
        "change [99% interval]": _change(v.figures), "p": _p(v.figures),
        "threshold": f"{v.threshold:.0%} ({v.threshold_source})",
        "detectable": _detectable(v),
        "processes": f"{v.n_baseline}/{v.n_candidate}", "why": v.reason,
    } for v in cmp.verdicts], columns=["row", "verdict", "baseline", "candidate", "change [99% interval]", "p",
                                       "threshold", "detectable", "processes", "why"])
    if cmp.counted and cmp.metric != "instructions":
        frame.insert(5, "instructions", [f"{v.count_ratio - 1:+.2%}" if v.count_ratio == v.count_ratio else "-"
                                         for v in cmp.verdicts])
    return frame


def counts(cmp: Comparison) -> str:
    tally = pd.Series([v.verdict for v in cmp.verdicts], dtype="object").value_counts()
    text = ", ".join(f"{int(tally.get(k, 0))} {k}" for k in VERDICTS if k != "changed" or tally.get(k, 0))
    if cmp.not_applicable:
        text += f"; {len(cmp.not_applicable)} row(s) not applicable on both sides"
    return text


def not_applicable_line(cmp: Comparison, *, markdown: bool = False) -> str:
    """One line for the rows not applicable on both sides (variants that cannot run on that device), or "".
    markdown: the row labels go through md_text."""
    if not cmp.not_applicable:
        return ""
    shown = ", ".join(md_text(r) if markdown else r for r in cmp.not_applicable[:3])
    more = f" and {len(cmp.not_applicable) - 3} more" if len(cmp.not_applicable) > 3 else ""
    return (f"not compared: {len(cmp.not_applicable)} row(s) not applicable on both sides (a variant that cannot "
            f"run on that device; not a failure): {shown}{more}")


def console(cmp: Comparison) -> str:
    """The console report: the table, added/removed rows, environment differences, notes, the tally."""
    lines = [table(cmp).to_string(index=False) if cmp.verdicts else "(no rows in common)"]
    lines += [f"added (only in the candidate): {r}" for r in cmp.added]
    lines += [f"removed (only in the baseline): {r}" for r in cmp.removed]
    lines += [line for line in [not_applicable_line(cmp)] if line]
    lines += [f"environment: {d.field}: {d.baseline} -> {d.candidate}" for d in cmp.env_diffs if d.blocking]
    lines += [f"note: {n}" for n in cmp.notes]
    lines.append(f"{counts(cmp)} ({rule_line(cmp)})")
    return "\n".join(lines)


def rule_line(cmp: Comparison) -> str:
    """The rule in one line: instructions, paired (bench ab) or not."""
    if cmp.metric == "instructions":
        return ("instructions per call, counted by callgrind: slower when the count grew by at least half the "
                "threshold; the times shown are not judged")
    if cmp.counted:
        return ("time and instructions: counts slower or time slower is slower; counts same and time unsure is same "
                "(counts cannot see cache or layout changes); rows without counts by time alone")
    if cmp.paired:
        looks = cmp.rule.looks
        spent = (f" (judged at {', '.join(map(str, looks))} pairs, each look spending its share of both)"
                 if len(looks) > 1 else "")
        return (f"paired processes: slower when the median of the pairs' ratios is >= 1 + threshold/2, its "
                f"{cmp.rule.confidence:.0%} interval above 1 and the sign test p < {cmp.rule.paired_alpha:g}{spent}; "
                "detectable: the smallest slowdown these pairs could have shown")
    return (f"the unit is the worker process: slower when the change of the per-process medians is >= half the "
            f"threshold, its 99% interval above 1 and Mann-Whitney p < {cmp.rule.alpha:g}; detectable: the smallest "
            "slowdown these processes could have shown")


def _md_table(frame: pd.DataFrame) -> str:
    """A Markdown table; every header and cell goes through md_text (names, reasons and env values are untrusted)."""
    cells = frame.map(md_text)
    rows = [" | ".join(md_text(c) for c in frame.columns), " | ".join("---" for _ in frame.columns)]
    rows += [" | ".join(r) for r in cells.itertuples(index=False)]
    return "\n".join(f"| {r} |" for r in rows)


def markdown(cmp: Comparison) -> str:
    """A Markdown report fit for a pull-request comment (pandas' to_markdown needs tabulate: written here)."""
    slower = cmp.slower
    head = (f"### ❌ {len(slower)} row(s) slower" if slower else
            f"### ⚠️ {len(cmp.unjudged)} row(s) not judged: not a pass" if cmp.unjudged else "### ✅ No row slower")
    if cmp.changed and not slower:
        head += f" ({len(cmp.changed)} row(s) changed their definition: not judged)"
    out = [head, "", f"Baseline {md_text(cmp.baseline)}, candidate {md_text(cmp.candidate)}: {counts(cmp)}.", ""]
    look = attention(cmp, markdown=True)
    if look:
        out += ["**Rows to look at**" + (" (could detect: the smallest slowdown this job could have called slower)"
                                         if any(v.verdict == "unsure" for v in cmp.verdicts) else ""), ""]
        out += [f"- {line}" for line in look] + [""]
    if cmp.verdicts:
        out += [_md_table(table(cmp, marks=True)), ""]
    if cmp.added or cmp.removed or cmp.not_applicable:
        out += ["**Rows not compared**", ""]
        out += [f"- added (only in the candidate): {md_text(r)}" for r in cmp.added]
        out += [f"- removed (only in the baseline): {md_text(r)}" for r in cmp.removed]
        out += [f"- {line}" for line in [not_applicable_line(cmp, markdown=True)] if line]
        out.append("")
    if cmp.env_diffs:
        out += ["**Environment differences**" + (" (compared anyway: `--allow-env-mismatch`)"
                                                 if cmp.env_mismatch_allowed and any(d.blocking for d in cmp.env_diffs)
                                                 else ""), "",
                _md_table(pd.DataFrame([{"setting": d.field, "baseline": d.baseline, "candidate": d.candidate,
                                         "matters": "yes" if d.blocking else "no"} for d in cmp.env_diffs])), ""]
    else:
        out += ["Environments match.", ""]
    out += [f"- {md_text(n)}" for n in cmp.notes]
    if cmp.metric == "instructions" or cmp.counted:
        out += ["", f"<sub>Rule: {rule_line(cmp)}.</sub>"]
        return "\n".join(out).rstrip() + "\n"
    if cmp.paired:
        out += ["", f"<sub>Rule (paired, `bench ab`): each pair of worker processes, one per side, ran side by side "
                    f"in time and gives one ratio candidate / baseline of its median per-call times. `slower` when the "
                    f"median ratio is at least 1 + threshold/2, its {cmp.rule.confidence:.0%} order-statistic interval "
                    f"lies above 1 and the exact sign test gives p < {cmp.rule.paired_alpha:g}; "
                    "`same` when the interval "
                    f"rules out a change as large as the threshold; `unsure` otherwise (and with fewer than "
                    f"{cmp.rule.min_pairs} pairs). detectable: the smallest slowdown these pairs could have called "
                    "slower.</sub>"]
        return "\n".join(out).rstrip() + "\n"
    out += ["", f"<sub>Rule: the unit is the worker process (each side's values are its processes' median per-call "
                f"times). `slower` when the Hodges-Lehmann ratio candidate / baseline (the median of all pairwise "
                f"ratios of process medians) is at least 1 + threshold/2, its {cmp.rule.confidence:.0%} "
                f"distribution-free rank interval (Moses) lies above 1 and a Mann-Whitney U test on the process "
                f"medians gives p < {cmp.rule.alpha:g}; `same` when the interval rules out a change as large as the "
                f"threshold; `unsure` otherwise (and with fewer than {cmp.rule.min_processes} processes a side). "
                f"detectable: the smallest slowdown this comparison could have called slower.</sub>"]
    return "\n".join(out).rstrip() + "\n"


def ratio_figure(cmp: Comparison):
    """Each row's ratio (candidate / baseline) as a change in %, with its interval and the decision line
    (1 + threshold/2); None when no row has a ratio."""
    rows = [v for v in cmp.verdicts if v.figures.known]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9, 1.8 + 0.4 * len(rows)))
    for i, v in enumerate(rows):
        f = v.figures
        lo, hi = max(f.ratio_low, f.ratio / 3), min(f.ratio_high, f.ratio * 3)  # an unbounded interval: clipped
        ax.errorbar(f.ratio, i, xerr=[[f.ratio - lo], [hi - f.ratio]], fmt="o", color=COLORS[v.verdict], capsize=3)
        ax.plot([1 + v.threshold / 2] * 2, [i - 0.4, i + 0.4], color="black", linestyle=":", linewidth=1)
        ax.text(hi, i, f"  {f.ratio - 1:+.1%} {v.verdict}", va="center", fontsize=8, parse_math=False)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x - 1:+.0%}"))
    ax.set_yticks(range(len(rows)), labels=[mpl_text(v.label) for v in rows])  # names are never mathtext
    ax.invert_yaxis()
    estimate = ("median of the pairs' ratios" if cmp.paired else "instructions per call" if cmp.metric == "instructions"
                else "Hodges-Lehmann ratio of process medians")
    ax.set_xlabel(f"change, candidate vs baseline ({estimate})\nbars: 99% interval; dotted: half the threshold")
    ax.set_title("Regression gate: ratio per row")
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def save_figure(fig, path: Path) -> Path:
    """Save a figure as PNG at path atomically (bench.store.files.write_atomic: no temporary file is left
    behind on any failure) and close it, whatever happens."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110)
    finally:
        plt.close(fig)
    return write_atomic(path, buf.getvalue())
