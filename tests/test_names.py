"""Injection through names: workload names, tags, reasons, notes, paths and env values are untrusted text.

Each probe of the issue is a test here: Markdown (gate.md, report.md) and HTML (report.html) show hostile text
as text, matplotlib never reads a name as mathtext, names and tags follow one rule at config time, no
results.csv cell is a spreadsheet formula, and the gate's figure is written atomically.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # below matplotlib.use("Agg")
import pandas as pd  # below matplotlib.use("Agg")
import pytest  # below matplotlib.use("Agg")
from test_compare import ENV, compare_frames, run_frames, samples  # below matplotlib.use("Agg")
from torch import nn  # below matplotlib.use("Agg")

from bench import Workload  # below matplotlib.use("Agg")
from bench.cli.main import main  # below matplotlib.use("Agg")
from bench.gate.render import markdown, ratio_figure, save_figure  # below matplotlib.use("Agg")
from bench.measure.env import EnvDiff  # below matplotlib.use("Agg")
from bench.measure.roofs import Peaks  # below matplotlib.use("Agg")
from bench.report.build import build_report  # below matplotlib.use("Agg")
from bench.report.figures import speedup_table, variant_figure  # below matplotlib.use("Agg")
from bench.report.plots import latency_figure, speedup_figure  # below matplotlib.use("Agg")
from bench.report.render import render_html, render_md, write_report  # below matplotlib.use("Agg")
from bench.report.roofline import roofline_figure  # below matplotlib.use("Agg")
from bench.schema import KEY_COLUMNS  # below matplotlib.use("Agg")
from bench.store.cells import md_text, mpl_text, neutralize  # below matplotlib.use("Agg")
from bench.store.folder import Run  # below matplotlib.use("Agg")
from bench.suite import config  # below matplotlib.use("Agg")
from bench.suite.workload import NAME_RULE  # below matplotlib.use("Agg")

# Text that, unescaped, splits a Markdown table and makes a heading, hides the rest of the page, makes a link
# or an image, runs a script, or crashes matplotlib's mathtext.
HEADING = "evil\n## heading"
COMMENT = "<!-- hide"
LINK = "[x](http://evil)"
IMAGE = "![x](http://evil/p.png)"
MATH = r"$\frac{1}{$"
SCRIPT = "<script>alert(1)</script>"
HOSTILE = [HEADING, COMMENT, LINK, IMAGE, MATH, SCRIPT, "a|b", "`tick` *em* _u_ ~~s~~ &lt;", "1. # > - + \\"]


def _shown(text: str) -> str:
    """How a Markdown renderer must show text: the same characters, line breaks as spaces."""
    return text.replace("\n", " ")


def _markdown_it():
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable("table").enable("strikethrough")


def _tokens(md: str) -> list:
    """Every token of md, inline children included (markdown-it, CommonMark with GFM tables)."""
    out = []
    for t in _markdown_it().parse(md):
        out.append(t)
        out += t.children or []
    return out


def _assert_no_injection(md: str, headings: list[str]) -> None:
    """What any reader can check on the text itself: no hostile construct survives unescaped, and the only
    headings are the renderer's own."""
    assert not re.search(r"(?<!\\)<(?!/?sub>| )", md), "an unescaped '<' (HTML, a comment) other than the rule's <sub>"
    assert not re.search(r"(?<!\\)\]\((?!report-\d+-\w+\.png\))", md), "a link or image other than our figures"
    assert [line for line in md.splitlines() if line.lstrip().startswith("#")] == headings


# ---------------------------------------------------------------- probe 1: gate.md
def _hostile_comparison():
    """A comparison whose rows, notes, paths and env values are hostile; the slower row comes after '<!--'."""
    rows = {name: samples(1e-3, seed=i) for i, name in enumerate(HOSTILE)}
    slow = dict(rows, slow=samples(1.5e-3, seed=99))
    cmp = compare_frames(run_frames(dict(rows, slow=samples(1e-3, seed=98))), run_frames(slow))
    return dataclasses.replace(
        cmp, baseline=f"results/{COMMENT}", candidate=f"results/{LINK}", notes=(HEADING, IMAGE),
        added=(f"{SCRIPT} / cpu / float32",), removed=(f"{HEADING} / cpu / float32",),
        not_applicable=(f"{COMMENT} / cuda_graph / cpu / float32",),
        env_diffs=(EnvDiff(field="torch", baseline=LINK, candidate=f"{COMMENT}\n# x", blocking=True),))


def test_gate_markdown_escapes_hostile_names():
    cmp = _hostile_comparison()
    labels = [v.label for v in cmp.verdicts]
    assert labels.index("slow / cpu / float32") > labels.index(f"{COMMENT} / cpu / float32")
    md = markdown(cmp)
    _assert_no_injection(md, ["### ❌ 1 row(s) slower"])
    # one table line per verdict (plus header and rule), every one of them with the same number of cells
    table = [line for line in md.splitlines()
             if line.startswith("| ") and "verdict" not in line and "setting" not in line]
    verdict_lines = [line for line in table if "float32" in line and "---" not in line]
    assert len(verdict_lines) == len(cmp.verdicts)
    assert len({len(re.findall(r"(?<!\\) \| ", line)) for line in verdict_lines}) == 1
    assert any("🔴 slower" in line and line.startswith("| slow / cpu / float32 |") for line in md.splitlines())
    assert md_text(HEADING) in md and md_text(LINK) in md and md_text(MATH) in md


def test_gate_markdown_renders_every_name_as_text():
    cmp = _hostile_comparison()
    md = markdown(cmp)
    tokens = _tokens(md)
    types = {t.type for t in tokens}
    assert not types & {"link_open", "image", "html_block", "em_open", "s_open", "blockquote_open", "ordered_list_open",
                        "fence", "code_block"}
    assert len([t for t in tokens if t.type == "strong_open"]) == 2  # "Rows not compared", "Environment differences"
    assert {t.content for t in tokens if t.type == "code_inline"} == {"slower", "same", "unsure"}  # the rule's words
    assert [t.content for t in tokens if t.type == "html_inline"] == ["<sub>", "</sub>"]  # the rule's footnote only
    assert [t.markup for t in tokens if t.type == "heading_open"] == ["###"]
    rows = [t for t in tokens if t.type == "tr_open"]
    assert len(rows) == 1 + len(cmp.verdicts) + 1 + 1  # verdicts table, env table: each with its header
    text = "".join(t.content for t in tokens if t.type == "text")
    for name in HOSTILE:
        assert _shown(name) in text


# ---------------------------------------------------------------- probe 1 and 2: report.md, report.html, figures
def _hostile_run() -> Run:
    """A run whose workloads, variants, reasons, notes, machine and folder name are hostile."""
    rows, samp = [], []

    def row(workload, variant="default", status="ok", reason=None, median_s=1e-3, noisy=False):
        ok = status == "ok"
        rows.append(dict(
            workload=workload, device="cpu", dtype="float32", variant=variant, status=status, reason=reason,
            flops=2e6, bytes=1e4, median_s=median_s if ok else None, rel_iqr=0.3 if noisy else 0.01, noisy=noisy,
            host_median_s=median_s if ok else None, enqueue_median_s=None, flops_per_s=2e6 / median_s if ok else None,
            bytes_per_s=1e4 / median_s if ok else None, n_samples=5 if ok else 0, launch_bound=False, threads=2,
            max_rel_diff=1e-6, math="float32", note=f"=cmd|' /C calc'!A0 {LINK}", tags="t", source=f"{SCRIPT}.py",
            device_name=f"@{MATH}", **{"pass": "forward"}))
        if ok:
            samp.extend(dict(workload=workload, device="cpu", dtype="float32", variant=variant, sample=i,
                             device_s=median_s * (1 + 0.01 * i), calls=10) for i in range(5))

    for i, name in enumerate(HOSTILE):
        row(name, median_s=(i + 1) * 1e-3, noisy=name == MATH)
        row(name, variant=f"v{MATH}{COMMENT}", median_s=(i + 1) * 0.5e-3)
    row(f"broken{HEADING}", status="error", reason=f"RuntimeError: {LINK}\n## boom {COMMENT} {SCRIPT}")
    row(IMAGE, variant="cuda_graph", status="not-applicable", reason=f"{IMAGE} needs {SCRIPT}")
    env = dict(ENV, cpu_name=f"Evil {MATH} {COMMENT} CPU", host=f"host{SCRIPT}", git_commit=f"{LINK}\n# x",
               machine_keys={"cpu": "cpu-evil"})
    return Run(results=pd.DataFrame(rows), samples=pd.DataFrame(samp), env=env, source=Path(f"/tmp/{COMMENT}{LINK}"))


def _hostile_peaks() -> Peaks:
    return Peaks(device="cpu", machine_key="cpu-evil", device_name=f"{SCRIPT} {MATH}", threads=2,
                 flops_per_s={"float32": 1e11, f"m{MATH}": 2e11}, bytes_per_s=1e10,
                 source=f"config {LINK}\n# {COMMENT}")


@pytest.fixture(scope="module")
def hostile_report():
    return build_report([_hostile_run()], peaks=[_hostile_peaks()])


def test_report_markdown_escapes_hostile_names(hostile_report):
    figure_files = {c: f"report-{i + 1}-x.png" for i, c in enumerate(hostile_report.figures)}
    md = render_md(hostile_report, figure_files=figure_files)
    _assert_no_injection(md, ["# layerbench report", "## Environment", "## Suite", "## Roofline and latency",
                              "## Best variants", "## Rows the machine decided", "## Launch-bound rows",
                              "## Noisy rows", "## Rows that did not run",
                              "## Variants that do not apply"])
    # every table line has as many cells as its header: no name split a table
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("| ---"):
            width = len(re.findall(r"(?<!\\)\|", line))
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                assert len(re.findall(r"(?<!\\)\|", lines[j])) == width, lines[j]
                j += 1
    assert md_text(f"broken{HEADING}") in md and md_text(MATH) in md


def test_report_markdown_renders_every_name_as_text(hostile_report):
    figure_files = {c: f"report-{i + 1}-x.png" for i, c in enumerate(hostile_report.figures)}
    tokens = _tokens(render_md(hostile_report, figure_files=figure_files))
    types = {t.type for t in tokens}
    assert not types & {"link_open", "html_inline", "html_block", "code_inline", "em_open", "strong_open", "s_open"}
    assert [t.attrGet("src") for t in tokens if t.type == "image"] == list(figure_files.values())
    assert {t.markup for t in tokens if t.type == "heading_open"} == {"#", "##"}
    assert len([t for t in tokens if t.type == "heading_open"]) == 1 + 4 + 5  # title, 4 sections, 5 call-outs
    text = "".join(t.content for t in tokens if t.type == "text")
    for name in HOSTILE:
        assert _shown(name) in text
    assert "RuntimeError: [x](http://evil) ## boom <!-- hide <script>" in text


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text, self.comments = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k) for k, _ in attrs]
        if tag == "img":
            self.text.append(dict(attrs)["alt"])

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.comments.append(data)


def test_report_html_escapes_every_cell_and_caption(hostile_report):
    page = _Page()
    page.feed(render_html(hostile_report))
    assert set(page.tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "section", "table",
                              "thead", "tbody", "tr", "th", "td", "figure", "img", "figcaption"}
    assert set(page.attrs) <= {("html", "lang"), ("meta", "charset"), ("section", "id"), ("td", "class"),
                               ("tr", "class"), ("p", "class"), ("img", "alt"), ("img", "src")}
    assert page.comments == []
    text = "\n".join(page.text)
    for name in HOSTILE:
        assert name in text
    assert "RuntimeError: [x](http://evil)\n## boom <!-- hide <script>alert(1)</script>" in text
    for caption in hostile_report.figures:  # every caption, as the alt text and the figcaption
        assert page.text.count(caption) == 2
    # the machine: roofline, variants
    assert sum("Evil $\\frac{1}{$ <!-- hide" in c for c in hostile_report.figures) == 2
    # the peaks table
    assert "<script>alert(1)</script> $\\frac{1}{$" in text and "config [x](http://evil)\n# <!-- hide" in text


def test_write_report_neutralizes_roofline_csv_and_names_figures_plainly(hostile_report, tmp_path):
    html_path, md_path = write_report(hostile_report, tmp_path / "out")
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert all(re.fullmatch(r"report-\d+-[a-z0-9]+\.png|report\.(html|md)|roofline\.csv|peaks\.json", f) for f in files)
    with open(tmp_path / "out" / "roofline.csv", newline="", encoding="utf-8") as f:
        cells = [c for row in csv.reader(f) for c in row]
    assert "'=cmd|' /C calc'!A0 [x](http://evil)" in cells and f"'@{MATH}" in cells
    assert not any(c.startswith(("=", "@", "\t", "\r")) for c in cells)


# ---------------------------------------------------------------- probe 2: matplotlib never reads mathtext
MATH_NAMES = [MATH, "a$b$c", "$x$", r"\$y$", "$", "$$"]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _results(names, devices=("cpu",)):
    rows, samp = [], []
    for d, device in enumerate(devices):
        for i, name in enumerate(names):
            median = (i + 1) * 1e-3 / (d + 1)
            rows.append(dict(workload=name, device=f"{device}{MATH}" if device == "odd" else device, dtype="float32",
                             variant="default", status="ok", median_s=median, flops=2e6, bytes=1e4,
                             flops_per_s=2e6 / median, verdict="compute-bound", math="float32"))
            samp += [dict(workload=name, device=rows[-1]["device"], dtype="float32", variant="default", sample=k,
                          device_s=median * (1 + 0.01 * k)) for k in range(4)]
    return pd.DataFrame(rows), pd.DataFrame(samp)


def _latency():
    return latency_figure(*_results(MATH_NAMES, devices=("cpu", "odd")))


def _speedup():
    return speedup_figure(_results(MATH_NAMES, devices=("cpu", "cuda"))[0])


def _variants():
    frame = pd.concat([_results(MATH_NAMES)[0], _results(MATH_NAMES)[0].assign(variant=f"v{MATH}+x")])
    return variant_figure(speedup_table(frame), title=f"Variants: {MATH} machine")


def _roofline():
    peaks = Peaks(device="cpu", machine_key="k", device_name=MATH, threads=1,
                  flops_per_s={"float32": 1e10, f"m{MATH}": 2e10}, bytes_per_s=1e9)
    rows = _results(MATH_NAMES)[0].assign(dtype=f"d{MATH}", math=f"m{MATH}")
    return roofline_figure(rows, peaks, title=f"Roofline: {MATH}")


def _ratio():
    rows = {name: samples(1e-3, seed=i) for i, name in enumerate(MATH_NAMES)}
    return ratio_figure(compare_frames(run_frames(rows), run_frames(rows)))


@pytest.mark.parametrize("make", [_latency, _speedup, _variants, _roofline, _ratio],
                         ids=["latency_figure", "speedup_figure", "variant_figure", "roofline_figure", "ratio_figure"])
def test_figures_never_read_names_as_mathtext(make):
    fig = make()
    assert fig is not None
    shown = [t for ax in fig.axes for t in [*ax.get_yticklabels(), *ax.get_xticklabels(), *ax.texts, ax.title]
             if "$" in t.get_text()]
    assert shown  # the names are on the figure...
    assert _png(fig)[:8] == b"\x89PNG\r\n\x1a\n"  # ...and drawing them does not parse them as mathtext


def test_report_figures_with_a_mathtext_machine_and_names(hostile_report):
    assert len(hostile_report.figures) == 3  # roofline, variants, latency: all drawn with MATH in them
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in hostile_report.figures.values())


def test_mpl_text_escapes_every_dollar():
    fig, ax = plt.subplots()
    for name in MATH_NAMES:
        t = ax.text(0, 0, mpl_text(name))
        assert t._preprocess_math(t.get_text()) == (name, False)  # plain text that shows the name itself
    plt.close(fig)


# ---------------------------------------------------------------- probe 3: which names a workload may have
GOOD_NAMES = ["a", "7", "NA", "1.0", "seed-conv11", "mlp_1+2.x", "Z" * 100, "llama3-q_proj-b1s1-bfloat16"]
BAD_NAMES = ["", " ", "a b", "-x", "=cmd", "+x", "@x", ".hidden", "_x", "x" * 101, HEADING, COMMENT, LINK, MATH,
             "a/b", "a\\b", "é", "a\tb", "x\r", "tab\u2028"]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_names_and_tags_pass(name):
    assert Workload(name=name, module=nn.ReLU, input_shape=(2,), tags=(name, "x")).problems("cfg.py") == []


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_one_line_problems(name, one_line):
    problems = Workload(name=name, module=nn.ReLU, input_shape=(2,)).problems("cfg.py")
    assert [p.field for p in problems] == ["name"]
    p = problems[0]
    assert p.expected == NAME_RULE == ("1-100 characters: ASCII letters, digits, '.', '_', '+', '-', starting with "
                                       "a letter or digit")
    assert p.found == (repr(name) if len(repr(name)) <= 60 else f"{repr(name)[:60]}... ({len(name)} characters)")
    one_line(str(p), "cfg.py", ": name: expected 1-100 characters")


@pytest.mark.parametrize("tag", ["", "a b", "=x", COMMENT, MATH, "t" * 101])
def test_bad_tags_are_one_line_problems(tag, one_line):
    problems = Workload(name="w", module=nn.ReLU, input_shape=(2,), tags=("ok", tag)).problems("cfg.py")
    assert [(p.field, p.workload, p.expected) for p in problems] == [("tags[1]", "w", NAME_RULE)]
    assert problems[0].found == (repr(tag) if len(repr(tag)) <= 60 else f"{repr(tag)[:60]}... ({len(tag)} characters)")
    one_line(str(problems[0]), "cfg.py", "workload 'w'", "tags[")


def test_tags_of_mixed_types_never_raise_at_construction():
    w = Workload(name="w", module=nn.ReLU, input_shape=(2,), tags={"a", 1})
    assert [p.field for p in w.problems("cfg.py")] == ["tags"]


def test_every_shipped_config_follows_the_name_rule(repo_root):
    names = sorted(p.stem for p in (repo_root / "configs").glob("*.py"))
    assert {"seed", "smoke", "linear", "conv2d", "variants", "broken"} <= set(names)
    for name in names:
        for d in config.load_config(name).declared:
            assert not [p for p in d.workload.problems(d.source) if p.field == "name" or p.field.startswith("tags")], \
                (name, d.workload.name)


def test_cli_list_refuses_a_bad_name_in_one_line_per_problem(write_config, capsys):
    path = write_config("from torch import nn\nfrom bench import Workload\n\nWORKLOADS = [\n"
                        "    Workload(name='ok', module=nn.ReLU, input_shape=(2,)),\n"
                        "    Workload(name='a\\n## b', module=nn.ReLU, input_shape=(2,)),\n"
                        "    Workload(name='=cmd', module=nn.ReLU, input_shape=(2,), tags=('x y',)),\n]\n")
    assert main(["list", str(path)]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "cfg.py" in line]
    assert len(err) == 3, err
    assert "workload 'a\\n## b': name: expected 1-100 characters" in err[0] and "found 'a\\n## b'" in err[0]
    assert "workload '=cmd': name:" in err[1] and "workload '=cmd': tags[0]:" in err[2] and "found 'x y'" in err[2]


# ---------------------------------------------------------------- probe 4: no cell is a spreadsheet formula
def _csv_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "workload": ["-w", "w2", "w3"], "device": ["cpu", "cpu", "@cpu"], "dtype": ["float32"] * 3,
        "variant": ["default", "=v", "default"],
        "note": ["=1+1", "+SUM(A1)", "plain"], "reason": ["-2+3", "@SUM(A1)", None],
        "tags": ["\tx", "\rx", "a,b"], "source": ["=HYPERLINK(\"http://evil\")", "cfg.py", "'=already"],
        "device_name": ["@evil", "Intel", ""],
        "median_s": [-1.5, 2.0, float("nan")], "threads": [1, 2, 3], "noisy": [True, False, None],
        "input_shape": ["[2, 3]", "-[1]", "[4]"],
    })


def test_neutralize_quotes_formula_cells_only():
    frame = _csv_frame()
    before = frame.copy()
    out = neutralize(frame)
    pd.testing.assert_frame_equal(frame, before)  # a copy: the caller's frame is untouched
    assert list(out["note"]) == ["'=1+1", "'+SUM(A1)", "plain"]
    assert list(out["reason"][:2]) == ["'-2+3", "'@SUM(A1)"] and pd.isna(out["reason"][2])
    assert list(out["tags"]) == ["'\tx", "'\nx", "a,b"]  # a bare CR would split the CSV row: a quoted LF
    assert list(out["source"]) == ["'=HYPERLINK(\"http://evil\")", "cfg.py", "'=already"]
    assert list(out["device_name"]) == ["'@evil", "Intel", ""]
    assert list(out["input_shape"]) == ["[2, 3]", "'-[1]", "[4]"]
    for column in KEY_COLUMNS:  # validated names: never changed
        assert list(out[column]) == list(frame[column])
    pd.testing.assert_series_equal(out["median_s"], frame["median_s"])
    pd.testing.assert_series_equal(out["threads"], frame["threads"])
    pd.testing.assert_series_equal(out["noisy"], frame["noisy"])
    pd.testing.assert_frame_equal(neutralize(out), out)  # twice is once


def test_neutralized_csv_has_no_formula_cell(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(neutralize(_csv_frame()).to_csv(index=False), encoding="utf-8")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    text_columns = ["note", "reason", "tags", "source", "device_name", "input_shape"]
    for row in rows:
        for column in text_columns:
            assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r")), (column, row[column])
    assert len(rows) == 3  # a carriage return in a cell did not split its row
    assert [r["median_s"] for r in rows] == ["-1.5", "2.0", ""]
    assert [r["workload"] for r in rows] == ["-w", "w2", "w3"]


# ---------------------------------------------------------------- probe 5: the gate's figure is atomic
def _figure():
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    return fig


def test_save_figure_writes_a_png_and_nothing_else(tmp_path):
    fig = _figure()
    path = save_figure(fig, tmp_path / "gate.png")
    assert path == tmp_path / "gate.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["gate.png"]
    assert not plt.fignum_exists(fig.number)


def test_save_figure_leaves_no_temporary_file_when_the_write_fails(tmp_path, monkeypatch):
    def refuse(src, dst, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    fig = _figure()
    with pytest.raises(OSError, match="No space left"):
        save_figure(fig, tmp_path / "gate.png")
    assert list(tmp_path.iterdir()) == []  # neither gate.png nor a temporary file
    assert not plt.fignum_exists(fig.number)


def test_save_figure_leaves_an_older_png_whole_when_the_write_fails(tmp_path, monkeypatch):
    (tmp_path / "gate.png").write_bytes(b"old")
    monkeypatch.setattr(os, "replace", lambda *a, **k: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError):
        save_figure(_figure(), tmp_path / "gate.png")
    assert [p.name for p in tmp_path.iterdir()] == ["gate.png"] and (tmp_path / "gate.png").read_bytes() == b"old"


def test_md_text_is_one_line_and_keeps_plain_names():
    assert md_text("seed-conv11 / cpu / float32") == "seed\\-conv11 / cpu / float32"
    assert md_text("a\r\nb\u2028c\x00d") == "a  b c d"
    assert md_text(None) == "" and md_text(float("nan")) == "" and md_text(3) == "3"
    assert all(md_text(c) == "\\" + c for c in "\\`*_{}[]()#+-.!|<>&~:@$")
