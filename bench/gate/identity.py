"""A row's identity in the gate includes its definition: a workload whose name stayed while its layers, parameters
or inputs changed (a changed config) is another layer, reported `changed` and never judged faster or slower.

results.csv's `definition` (bench.suite.plan.Plan.fingerprint) is a digest of the module as torch prints it, its
parameters' and buffers' shapes and dtypes, every input's dtype and shape, the variant and the dtype. Where either
side lacks it (a folder written before the column) the columns that describe the row decide: inputs (or input_shape),
output_shape, params and FLOPs; a difference in any of them is a changed definition. Two runs under different torch
versions (`bench ab --base-python`) may print the same module differently and count its FLOPs differently, so there
the digest and FLOPs are not compared, only the shapes and parameter counts.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

# The columns that describe a row, with the name a reason gives them. input_shape is read only where `inputs`
# (every input, the first's shape included) is missing on a side.
DESCRIBING = (("inputs", "inputs"), ("input_shape", "input"), ("output_shape", "output"), ("params", "params"),
              ("flops", "FLOPs"))


def _value(row: dict, column: str):
    """A cell as a comparable value: a number (float), a stripped string, or None where the row has none."""
    v = row.get(column)
    if v is None or (not isinstance(v, str) and bool(pd.isna(v))):
        return None
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
        return float(v)
    text = str(v).strip()
    return text or None


def _shown(v) -> str:
    return f"{v:,.0f}" if isinstance(v, float) and v.is_integer() else str(v)


def _differences(row_b: dict, row_c: dict, *, flops: bool) -> list[str]:
    """"params 2,080 -> 4,160" for each describing column both rows have and that differs."""
    out = []
    for column, label in DESCRIBING:
        if column == "input_shape" and _value(row_b, "inputs") is not None and _value(row_c, "inputs") is not None:
            continue
        if column == "flops" and not flops:
            continue
        a, b = _value(row_b, column), _value(row_c, column)
        if a is not None and b is not None and a != b:
            out.append(f"{label} {_shown(a)} -> {_shown(b)}")
    return out


def definition_change(row_b: dict, row_c: dict, *, same_torch: bool = True) -> str:
    """What differs between the definitions of two results rows of one name, or "" when nothing does (or nothing
    can be told): the describing columns that differ, or, where only the digest does, that the layers or their
    settings differ. same_torch: whether both runs ran one torch version (else the digest and FLOPs are not read)."""
    digests = _value(row_b, "definition"), _value(row_c, "definition")
    if same_torch and None not in digests and digests[0] == digests[1]:
        return ""
    differences = _differences(row_b, row_c, flops=same_torch)
    if differences:
        return "; ".join(differences)
    if same_torch and None not in digests:
        return (f"definition {digests[0]} -> {digests[1]}: same shapes, parameters and FLOPs, but the layers or their "
                "settings differ")
    return ""
