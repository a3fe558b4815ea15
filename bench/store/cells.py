"""Untrusted text in the files bench writes: cells of results.csv and text in Markdown reports.

Workload names, tags, notes, failure reasons, paths and environment values come from configs, run folders
and the machine: bench never trusts them to be plain text. Two places need care:

- `neutralize(frame)`: a CSV opened in a spreadsheet runs a cell starting with =, +, -, @, a tab or a
  carriage return as a formula (CSV injection). Every such text cell gets a leading single quote, the
  OWASP advice; numbers, booleans and the key columns (validated names) are left alone. Line endings in
  text become "\n", which pandas' to_csv quotes (a bare "\r" it does not quote, and it splits the row).
- `md_text(value)`: text for a Markdown file (gate.md is posted as a pull-request comment, report.md sits
  beside the HTML report). Markdown metacharacters are backslash-escaped and line breaks become spaces,
  so a name can neither split a table, start a heading, hide the rest of the page in an HTML comment,
  nor become a link or an image. Used by both bench.report.render and bench.gate.render.
- `mpl_text(value)`: text for matplotlib tick labels and legends (which take no `parse_math`): `$` is
  escaped so a name is never read as mathtext.
"""
from __future__ import annotations

import re
import unicodedata

import pandas as pd

from bench.schema import BOOL_COLUMNS, KEY_COLUMNS, NUMERIC_COLUMNS

# A cell starting with one of these is a formula (or becomes one once a spreadsheet strips the tab or CR).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Markdown metacharacters (CommonMark inline and block syntax, plus GitHub's strikethrough, autolinks and
# math): each is written with a backslash, which CommonMark renders as the character itself.
MD_SPECIAL = frozenset("\\`*_{}[]()#+-.!|<>&~:@$")
_MD_ESCAPE = re.compile("[" + re.escape("".join(sorted(MD_SPECIAL))) + "]")


def _as_text(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def md_text(value: object) -> str:
    """value as inline Markdown text that renders as exactly that text, on one line.

    Every Markdown metacharacter gets a backslash; line breaks, tabs and other control characters
    (and Unicode line or paragraph separators) become spaces. Safe in a table cell, a list item, a quote
    or a heading; None and NaN are "".
    """
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in _as_text(value))
    return _MD_ESCAPE.sub(lambda m: "\\" + m.group(0), text)


def mpl_text(value: object) -> str:
    """value for a matplotlib tick label or legend entry: `$` escaped, so that it is never mathtext.

    (A Text of our own takes `parse_math=False` instead; tick labels and legend entries cannot.)
    """
    return _as_text(value).replace("$", r"\$")


def _neutral(value: object) -> object:
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value


def neutralize(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of frame in which no text cell reads as a spreadsheet formula.

    Every text cell starting with =, +, -, @, a tab or a carriage return gets a leading single quote
    (OWASP's advice against CSV injection). Numbers are untouched, and so are the key columns
    (bench.schema.KEY_COLUMNS: validated names), the number columns and the True/False columns. A text
    cell that already starts with a quote is left as it is, so neutralizing twice changes nothing.
    Carriage returns in text become "\n" ("\r\n" too): pandas' to_csv quotes a cell holding "\n" but not one
    holding a bare "\r", which a reader takes for the end of the row.
    """
    out = frame.copy()
    for column in out.columns:
        if column in KEY_COLUMNS or column in NUMERIC_COLUMNS or column in BOOL_COLUMNS:
            continue
        values = out[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        out[column] = values.map(_neutral)
    return out
