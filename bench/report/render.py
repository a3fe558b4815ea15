"""Render a bench.report.build.Report as report.html (self-contained: inline CSS, figures as base64 PNG) and
report.md."""
from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.report.model import Report
from bench.report.render_models import models_html, models_md, write_model_files
from bench.report.roofline import verdict_text
from bench.report.site_pages import STYLESHEET, asset
from bench.schema import FAILED, NOT_APPLICABLE, OK
from bench.store.cells import md_text, neutralize
from bench.store.files import write_atomic
from bench.store.peaks import write_peaks_file
from bench.units import fmt_s, fmt_si

ENV_FIELDS = [("host", "host"), ("time_utc", "time (UTC)"), ("git_commit", "commit"), ("torch", "torch"),
              ("cuda", "CUDA"), ("cudnn", "cuDNN"), ("cpu_name", "CPU"), ("cpu_count", "cores"), ("threads", "threads"),
              ("cuda_device", "GPU"), ("allow_tf32_cudnn", "cuDNN TF32"), ("allow_tf32_matmul", "matmul TF32"),
              ("cudnn_benchmark", "cudnn.benchmark"), ("complete", "complete")]
CSS = asset(STYLESHEET)  # one look with the history site (bench.report.site_pages)


def _pct(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.3g}%"


def _sci(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.1e}"


def suite_rows(report: Report) -> tuple[list[str], list[list[str]], list[str]]:
    """Headers, cells and a CSS class per row of the suite table (rows that ran or failed; not-applicable apart).

    The machine column appears only when several machines are merged, host/call only when a GPU ran
    (on a CPU it equals the median).
    """
    f = report.frame[report.frame["status"] != NOT_APPLICABLE]
    headers = ["machine", "device", "workload", "variant", "dtype", "status", "median/call", "IQR", "host/call",
               "FLOP/s", "bytes/s", "FLOP/byte", "roof (decided from)", "% of roof", "verdict", "peak memory (planned)",
               "max rel diff", "note"]
    decided = f.get("math_from", pd.Series(dtype=str)).isin(["kernels", "accuracy", "flags"])
    keep = [h for h in headers if not (h == "machine" and f["machine"].nunique() <= 1)
            and not (h == "roof (decided from)" and not decided.any())
            and not (h == "host/call" and not (f["device"] == "cuda").any())
            and not (h == "peak memory (planned)"
                     and not f.get("peak_memory_bytes", pd.Series(dtype=float)).notna().any())]
    rows, classes = [], []
    for _, r in f.iterrows():
        ok = r["status"] == OK
        cells = dict(zip(headers, [
            r["machine"], r["device"], r["workload"], r["variant"], r["dtype"], r["status"], fmt_s(r["median_s"]),
            _pct(100 * r["rel_iqr"]) if ok else "-", fmt_s(r["host_median_s"]), fmt_si(r["flops_per_s"]),
            fmt_si(r["bytes_per_s"], "B/s"), f"{r['flops'] / r['bytes']:.3g}" if r["bytes"] else "-",
            _roof(r), _pct(r["pct_of_roof"]), verdict_text(r["verdict"], r["pct_of_roof"]),
            f"{fmt_si(r.get('peak_memory_bytes'), 'B')} ({fmt_si(r.get('planned_peak_bytes'), 'B')})",
            _sci(r.get("max_rel_diff")), str(r["reason"])[:160] if not ok else _machine_note(r)]))
        rows.append([cells[h] for h in keep])
        classes.append("bad" if not ok else " ".join(
            c for c, on in (("launch-bound", r["verdict"] == "launch-bound"), ("noisy", bool(r["noisy"])),
                            ("machine-decided", machine_decided(r))) if on))
    return keep, rows, classes


def machine_decided(r: pd.Series) -> bool:
    """Whether the row's worker processes disagreed beyond what the layer explains (results.csv machine_decided;
    runs from before the column: never)."""
    return r.get("machine_decided") is True or r.get("machine_decided") == True  # noqa: E712 - numpy's bool too


def _machine_note(r: pd.Series) -> str:
    """The suite table's note of an ok row: the reason it is machine-decided, else nothing."""
    note = r.get("note")
    return str(note)[str(note).find("machine-decided"):][:160] if machine_decided(r) and isinstance(note, str) else ""


def _roof(r: pd.Series) -> str:
    """"tf32 (kernels)": the compute roof the row is held to and where that was decided (bench.measure.apply)."""
    math, source = r.get("math"), r.get("math_from")
    if not isinstance(math, str) or not math:
        return "-"
    return f"{math} ({source})" if isinstance(source, str) and source and source != "dtype" else math


def _share(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{100 * value:.0f}%"


def _flag3(value) -> str:
    return "?" if value is None or pd.isna(value) else ("yes" if value else "no")


KERNEL_HEADERS = ["machine", "device", "workload", "variant", "top kernels (share of one call, count)", "tensor cores",
                  "TF32"]
CLOCK_HEADERS = ["machine", "device", "workload", "variant", "SM clock", "memory clock", "power", "temperature",
                 "throttled samples", "throttle reasons"]


def kernel_rows(report: Report) -> list[list[str]]:
    """Rows profiled with --profile: the top kernels (CUDA) or operators (CPU) and what their names say."""
    f = report.frame
    sel = f[f.get("top_kernels", pd.Series(dtype=str, index=f.index)).notna()]
    return [[r["machine"], r["device"], r["workload"], r["variant"], str(r["top_kernels"]),
             *((_flag3(r.get("tensor_cores")), _flag3(r.get("tf32"))) if r["device"] == "cuda" else ("-", "-"))]
            for _, r in sel.iterrows()]


def clock_rows(report: Report) -> list[list[str]]:
    """GPU rows with NVML samples: clocks, power, temperature and throttling while they were measured."""
    f = report.frame
    sel = f[f.get("sm_clock_mhz", pd.Series(dtype=float, index=f.index)).notna()]
    num = (lambda v, unit: "-" if v is None or pd.isna(v) else f"{v:.0f} {unit}")  # noqa: E731 - a one-line formatter for this table
    return [[r["machine"], r["device"], r["workload"], r["variant"], num(r["sm_clock_mhz"], "MHz"),
             num(r.get("mem_clock_mhz"), "MHz"), num(r.get("power_w"), "W"), num(r.get("temperature_c"), "C"),
             _share(r.get("throttled_share")), str(r.get("throttle") or "")] for _, r in sel.iterrows()]


def cpu_clock_note(report: Report) -> str:
    """One line on the CPU frequency the CPU rows saw (Linux's figure; a VM may show its nominal one only)."""
    f = report.frame
    mhz = pd.to_numeric(f.get("cpu_mhz", pd.Series(dtype=float, index=f.index)), errors="coerce").dropna()
    if mhz.empty:
        return ""
    return (f"CPU frequency while the CPU rows ran: {mhz.min():.0f}-{mhz.max():.0f} MHz (as Linux reports it; a "
            "virtual machine may show its nominal frequency only).")


def best_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    headers = ["machine", "device", "workload", "variants", "default", "best variant", "best", "speed-up",
               "rel diff (default)", "rel diff (best)", "fwd+bwd / fwd"]
    rows = [[b["machine"], b["device"], b["workload"], str(b["variants_tried"]), fmt_s(b["default_median_s"]),
             b["best_variant"], fmt_s(b["best_median_s"]), f"{b['speedup']:.2f}x" + (" (noisy)" if b["noisy"] else ""),
             _sci(b["default_max_rel_diff"]), _sci(b["best_max_rel_diff"]),
             "-" if pd.isna(b["backward_over_forward"]) else f"{b['backward_over_forward']:.3g}x"]
            for _, b in report.best.iterrows()]
    return headers, rows


def callout_rows(report: Report, kind: str) -> list[list[str]]:
    """Rows that are machine-decided, launch-bound, noisy, failed, or not applicable (grouped by reason)."""
    f = report.frame
    ok = f[f["status"] == OK]
    if kind == "launch-bound":
        sel = ok[ok["verdict"] == "launch-bound"]
        return [[r["machine"], r["device"], r["workload"], r["variant"], fmt_s(r["median_s"]),
                 fmt_s(r["host_median_s"]), fmt_s(r["enqueue_median_s"])] for _, r in sel.iterrows()]
    if kind == "machine-decided":
        sel = ok[[machine_decided(r) for _, r in ok.iterrows()]] if len(ok) else ok
        return [[r["machine"], r["device"], r["workload"], r["variant"], fmt_s(r["median_s"]), _machine_note(r)]
                for _, r in sel.iterrows()]
    if kind == "noisy":
        sel = ok[ok["noisy"].astype(bool)]
        return [[r["machine"], r["device"], r["workload"], r["variant"], fmt_s(r["median_s"]), _pct(100 * r["rel_iqr"]),
                 str(int(r["n_samples"]))] for _, r in sel.iterrows()]
    if kind == "failed":
        sel = f[f["status"].isin(FAILED)]  # skipped included: it did not run
        return [[r["machine"], r["device"], r["workload"], r["variant"], r["status"], str(r["reason"])[:200]]
                for _, r in sel.iterrows()]
    na = f[f["status"] == NOT_APPLICABLE]
    return [[reason, ", ".join(dict.fromkeys(g["variant"])), str(len(g))] for reason, g in na.groupby("reason")]


CALLOUTS = {
    "machine-decided": ("Rows the machine decided", "Their worker processes' medians differ by 3x or more: other "
                        "processes, not the layer, set their time (threads waiting for a descheduled thread, a core "
                        "taken). Their median is not a measurement of the layer; the gate does not judge them. "
                        "Measure again on a quiet machine, or with fewer threads.",
                        ["machine", "device", "workload", "variant", "median/call", "why"]),
    "launch-bound": ("Launch-bound rows", "Time per call is launch or dispatch overhead, not arithmetic: a FLOP/s "
                     "figure means little here. On CUDA, compare the cuda_graph variant.",
                     ["machine", "device", "workload", "variant", "median/call", "host/call", "enqueue/call"]),
    "noisy": ("Noisy rows", "Relative IQR above 10%: treat their medians with care.",
              ["machine", "device", "workload", "variant", "median/call", "IQR", "samples"]),
    "failed": ("Rows that did not run", "", ["machine", "device", "workload", "variant", "status", "reason"]),
    "not-applicable": ("Variants that do not apply", "Skipped with a reason, not an error.",
                       ["reason", "variants", "rows"]),
}


ROOFLINE_NOTE = ("Roofs: the best of a short probe per device (a large matrix product per dtype; a large "
                 "device-to-device copy, bytes read + written). % of roof = achieved FLOP/s over min(compute roof of "
                 "the row's dtype, intensity x memory roof); above 100% on a CPU means the data stayed in cache.")
CELL_CLASS = {"IQR": ' class="n iqr"', "note": ' class="wrap"', "reason": ' class="wrap"'}


def _html_table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        cells = "".join(f"<td{CELL_CLASS.get(headers[j], '')}>{html.escape(str(c))}</td>" for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _env_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """One column per run folder, one row per setting (few runs, many settings)."""
    headers = ["setting"] + [e["run"] for e in report.envs]
    return headers, [[label] + [str(e.get(k, "")) for e in report.envs] for k, label in ENV_FIELDS]


def _peak_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    headers = ["device", "name", "threads", "FLOP/s per dtype", "bytes/s", "where the roofs come from"]
    return headers, [[p.device, p.device_name, str(p.threads),
                      ", ".join(f"{k} {fmt_si(v)}" for k, v in p.flops_per_s.items()),
                      fmt_si(p.bytes_per_s, "B/s"), p.provenance] for p in report.peaks]


def render_html(report: Report, *, site_link: str = "") -> str:
    """The report as one HTML page with no external references but site_link, a history site's index.html."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    site = f"<header><b>layerbench</b><nav><a href='{html.escape(site_link)}'>History of these rows</a></nav></header>"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>layerbench report</title>"
             f"<style>{CSS}</style></head><body>{site if site_link else ''}<h1>layerbench report</h1>",
             f"<p class='note'>{len(report.runs)} run(s), {len(report.frame)} rows; written {now}. Times are "
             "per call: median device time (CUDA events on a GPU, the host clock on a CPU). FLOPs count a multiply-add "
             "as 2; bytes are input, weights and output once each.</p>"]
    parts += [f"<p class='note'>Note: {html.escape(n)}</p>" for n in report.notes]
    parts.append("<section id='environment'><h2>Environment</h2>" + _html_table(*_env_rows(report)) + "</section>")
    headers, rows, classes = suite_rows(report)
    parts.append("<section id='suite'><h2>Suite</h2>" + _html_table(headers, rows, classes) + "</section>")
    figs = "".join(f"<figure><img alt='{html.escape(c)}' src='data:image/png;base64,{base64.b64encode(p).decode()}'>"
                   f"<figcaption>{html.escape(c)}</figcaption></figure>" for c, p in report.figures.items())
    parts.append("<section id='roofline'><h2>Roofline and latency</h2>"
                 f"<p class='note'>{html.escape(ROOFLINE_NOTE)}</p>" + _html_table(*_peak_rows(report)) + figs
                 + "</section>")
    parts.append("<section id='best-variants'><h2>Best variants</h2><p class='note'>Fastest forward variant per "
                 "workload and device; rel diff = max |output - float64 CPU reference| / max |reference|.</p>"
                 + _html_table(*best_rows(report)) + "</section>")
    parts += models_html(report, _html_table)  # a section per model (bench.layers): where its time goes
    for kind, title, note, headers, rows in _extra_sections(report):
        parts.append(f"<section id='{kind}'><h2>{title}</h2><p class='note'>{html.escape(note)}</p>"
                     f"{_html_table(headers, rows) if rows else ''}</section>")
    for kind, (title, note, headers) in CALLOUTS.items():
        rows = callout_rows(report, kind)
        body = _html_table(headers, rows) if rows else "<p>None.</p>"
        parts.append(f"<section id='{kind}'><h2>{title}</h2><p class='note'>{html.escape(note)}</p>"
                     f"{body}</section>")
    return "".join(parts) + "</body></html>\n"


KERNELS_NOTE = ("From `run --profile`: torch.profiler over a few calls after the timing; CUDA rows list device "
                "kernels, CPU rows ATen operators, by self time. Tensor cores and TF32 are read from the kernel names "
                "(cuBLAS, cuDNN, CUTLASS); '?' where names cannot tell (Triton). Traces: the run folder's profiles/.")
CLOCKS_NOTE = ("NVML samples every 50 ms while each GPU row was measured: median clocks and power, the hottest "
               "temperature, and the share of samples taken while the GPU throttled (power cap, thermal, hardware "
               "slowdown): a throttled row's time is not the layer's alone.")


def _extra_sections(report: Report) -> list[tuple[str, str, str, list[str], list[list[str]]]]:
    """The kernels and GPU clock sections, present only when a row has that data."""
    out = []
    cpu = cpu_clock_note(report)
    if (rows := kernel_rows(report)):
        out.append(("kernels", "Kernels that ran", KERNELS_NOTE, KERNEL_HEADERS, rows))
    if (rows := clock_rows(report)) or cpu:
        out.append(("clocks", "Clocks and throttling", " ".join(x for x in (CLOCKS_NOTE if rows else "", cpu) if x),
                    CLOCK_HEADERS, rows))
    return out


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; every header and cell goes through md_text (names, reasons, paths and env values
    are untrusted: none may split the table, start a heading, open an HTML comment or make a link)."""
    esc = [[md_text(c) for c in row] for row in rows]
    lines = (["| " + " | ".join(md_text(h) for h in headers) + " |", "|" + " --- |" * len(headers)]
             + ["| " + " | ".join(r) + " |" for r in esc])
    return "\n".join(lines) if rows else "None."


def render_md(report: Report, *, figure_files: dict[str, str]) -> str:
    """The report as Markdown; figures are referenced by file name (figure_files: caption -> file)."""
    out = ["# layerbench report", "", f"{len(report.runs)} run(s), {len(report.frame)} rows.", ""]
    out += [f"> Note: {md_text(n)}" for n in report.notes]
    out += ["## Environment", "", _md_table(*_env_rows(report)), "", "## Suite", "", _md_table(*suite_rows(report)[:2]),
            "", "## Roofline and latency", "", ROOFLINE_NOTE, "", _md_table(*_peak_rows(report)), ""]
    out += [f"![{md_text(c)}]({f})" for c, f in figure_files.items()]
    out += ["", "## Best variants", "", _md_table(*best_rows(report)), ""]
    out += models_md(report, _md_table)
    for _, title, note, headers, rows in _extra_sections(report):
        out += [f"## {title}", "", note, ""] + ([_md_table(headers, rows), ""] if rows else [])
    for kind, (title, note, headers) in CALLOUTS.items():
        out += [f"## {title}", "", note, "", _md_table(headers, callout_rows(report, kind)), ""]
    return "\n".join(out) + "\n"


def write_report(report: Report, out_dir: Path, *, site_link: str = "") -> tuple[Path, Path]:
    """Write report.html, report.md, the figures as PNG, roofline.csv and peaks.json into out_dir; site_link: a
    link from report.html to a history site's index.html."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, (caption, png) in enumerate(report.figures.items()):
        word = "".join(c for c in (caption.split(":")[0].split() or [""])[0].lower() if c.isascii() and c.isalnum())
        name = f"report-{i + 1}-{word or 'figure'}.png"  # a plain relative file name, safe as a link destination
        write_atomic(out_dir / name, png)
        files[caption] = name
    write_atomic(out_dir / "roofline.csv", neutralize(report.frame).to_csv(index=False))  # no cell is a formula
    if report.peaks:
        write_peaks_file(out_dir / "peaks.json", list(report.peaks))
    write_model_files(report, out_dir)  # the model sections' figures and layers.csv
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    write_atomic(html_path, render_html(report, site_link=site_link))
    write_atomic(md_path, render_md(report, figure_files=files))
    return html_path, md_path

