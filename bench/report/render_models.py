"""The report's model sections (bench.report.attribution) as HTML and Markdown, their figures' files and layers.csv.

bench.report.render calls these with its own table writers, so both pages' tables look and escape alike.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Callable
from pathlib import Path

from bench.report.model import ModelSection, Report
from bench.store.attribution import LAYERS_FILE, layers_csv
from bench.store.cells import md_text
from bench.store.files import write_atomic

Table = Callable[[list[str], list[list[str]]], str]


def figure_file(section: ModelSection, index: int) -> str:
    """A model figure's file name beside report.md: "model-2-fig1.png" (plain, safe as a link destination)."""
    return f"{section.anchor}-fig{index + 1}.png"


def write_model_files(report: Report, out_dir: Path) -> list[Path]:
    """The model sections' figures as PNG files, and layers.csv (the attribution, with the roofline's verdicts)
    when the report has rows of a model."""
    written = [write_atomic(out_dir / figure_file(s, i), data)
               for s in report.models for i, data in enumerate(s.figures.values())]
    if len(report.attribution):
        written.append(write_atomic(out_dir / LAYERS_FILE, layers_csv(report.attribution)))
    return written


def models_html(report: Report, table: Table) -> list[str]:
    """One <section id='model-N'> per model section."""
    parts = []
    for s in report.models:
        figs = "".join(f"<figure><img alt='{html.escape(c)}' "
                       f"src='data:image/png;base64,{base64.b64encode(p).decode()}'>"
                       f"<figcaption>{html.escape(c)}</figcaption></figure>" for c, p in s.figures.items())
        notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in s.notes)
        parts.append(f"<section id='{s.anchor}' class='model'><h2>{html.escape(s.title)}</h2>"
                     + table(list(s.summary_headers), [list(r) for r in s.summary]) + notes + figs
                     + f"<h3>{html.escape(s.top_title)}</h3>"
                     + (table(list(s.top_headers), [list(r) for r in s.top]) if s.top else "<p>None ran.</p>")
                     + "</section>")
    return parts


def models_md(report: Report, table: Table) -> list[str]:
    """The model sections as Markdown lines; figures by file name (figure_file)."""
    out = []
    for s in report.models:
        out += [f"## {md_text(s.title)}", "", table(list(s.summary_headers), [list(r) for r in s.summary]), ""]
        out += [md_text(n) for n in s.notes] + [""]
        out += [f"![{md_text(c)}]({figure_file(s, i)})" for i, c in enumerate(s.figures)] + [""]
        out += [f"### {md_text(s.top_title)}", "", table(list(s.top_headers), [list(r) for r in s.top]), ""]
    return out
