"""Workload declarations and config loading: what loads, and the one-line errors for what does not."""
from __future__ import annotations

import dataclasses
import functools

import pytest
import torch
from torch import nn

from bench import BenchError, Workload
from bench.suite.config import CONFIG_DIR, load_config, load_suite, resolve

VALID = """
from torch import nn
from bench import Workload
WORKLOADS = [Workload(name="ok", module=lambda: nn.Linear(4, 2), input_shape=(2, 4))]
"""


# ---------------------------------------------------------------- Workload
def test_workload_is_frozen_and_normalises_lists():
    w = Workload(name="w", module=nn.ReLU, input_shape=[2, 3], tags=["b", "a"])
    assert w.input_shape == (2, 3) and w.tags == ("a", "b")
    assert Workload(name="w", module=nn.ReLU, input_shape=(1,), tags="one").tags == ("one",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.name = "other"  # type: ignore[misc]
    assert w.torch_dtype is torch.float32
    assert w.problems("x.py") == []


def test_module_may_be_class_lambda_or_partial():
    for builder in (nn.Flatten, lambda: nn.Linear(3, 2), functools.partial(nn.Linear, 3, 2)):
        assert Workload(name="w", module=builder, input_shape=(2, 3)).problems("x.py") == []


@pytest.mark.parametrize(
    "field, kwargs, found",
    [
        ("input_shape[0]", dict(input_shape=(0, 4)), "0"),
        ("input_shape[1]", dict(input_shape=(2, -3)), "-3"),
        ("input_shape[0]", dict(input_shape=(2.5, 4)), "2.5"),
        ("input_shape[1]", dict(input_shape=(2, "4")), "'4'"),
        ("input_shape[0]", dict(input_shape=(True, 4)), "True"),
        ("input_shape", dict(input_shape=()), "()"),
        ("input_shape", dict(input_shape=4), "4"),
        ("module", dict(module="Linear(4, 4)"), "str"),
        ("module", dict(module=42), "int"),
        ("module", dict(module=torch.zeros(3, 3)), "Tensor"),  # a multi-line repr must stay on one line
        ("dtype", dict(dtype="float8"), "float8"),
        ("name", dict(name=""), "''"),
        ("name", dict(name=None), "None"),
        ("tags", dict(tags=("a", 1)), "1"),
        ("threshold", dict(threshold=-0.5), "-0.5"),
    ],
)
def test_workload_field_problems_are_one_line(field, kwargs, found, one_line):
    fields = dict(name="bad", module=lambda: nn.Linear(4, 4), input_shape=(2, 4)) | kwargs
    problems = Workload(**fields).problems("cfg.py")
    assert len(problems) == 1, problems
    p = problems[0]
    assert p.field == field and p.where == "cfg.py"
    one_line(str(p), "cfg.py", f": {field}:", "expected", found)
    if "name" not in kwargs:
        assert "workload 'bad'" in str(p)


def test_every_field_problem_is_reported_at_once():
    w = Workload(name="", module=3, input_shape=(0, -1, 1.5), dtype="int8")
    fields = [p.field for p in w.problems("cfg.py")]
    assert fields == ["name", "module", "input_shape[0]", "input_shape[1]", "input_shape[2]", "dtype"]


# ---------------------------------------------------------------- resolve / load
def test_config_by_name_or_path_gives_same_workloads(repo_root):
    by_name = load_config("seed").declared
    by_path = load_config("configs/seed.py").declared
    assert [d.workload.name for d in by_name] == [d.workload.name for d in by_path]
    assert len(by_name) == 6
    assert {d.source for d in by_name} == {"configs/seed.py"}
    assert resolve("smoke") == CONFIG_DIR / "smoke.py"


def test_config_anywhere_on_disk(write_config):
    path = write_config(VALID)
    [declared] = load_config(str(path)).declared
    assert declared.workload.name == "ok" and declared.source == str(path)


def _error(spec: str) -> BenchError:
    with pytest.raises(BenchError) as info:
        load_config(spec)
    return info.value


def test_unknown_config_name_lists_the_known_ones(one_line):
    err = _error("no-such-config")
    one_line(str(err), "no-such-config", "seed", "smoke")


def test_missing_config_path(tmp_path, one_line):
    missing = tmp_path / "missing.py"
    one_line(str(_error(str(missing))), str(missing), "no such file")


def test_syntax_error_names_file_and_line(write_config, one_line):
    path = write_config("from bench import Workload\n\nWORKLOADS = [\n    Workload(name='x',,)\n]\n")
    err = _error(str(path))
    one_line(str(err), f"{path}:4", "syntax error")


def test_config_that_raises_at_import_names_file_line_and_exception(write_config, one_line):
    path = write_config("""
        import math
        SIZE = 3
        WORKLOADS = [math.sqrt(-SIZE)]
    """)
    one_line(str(_error(str(path))), f"{path}:3", "ValueError", "math domain error")


def test_config_with_multiline_exception_is_still_one_line(write_config, one_line):
    path = write_config('raise RuntimeError("first line\\nsecond line")\n')
    text = one_line(str(_error(str(path))), f"{path}:1", "RuntimeError: first line")
    assert "second line" not in text


def test_config_without_workloads(write_config, one_line):
    path = write_config("from torch import nn\nLAYERS = [nn.ReLU]\n")
    one_line(str(_error(str(path))), str(path), "WORKLOADS", "no WORKLOADS")


@pytest.mark.parametrize("value, found", [("{'a': 1}", "dict"), ("0", "int"),
                                          ("Workload(name='x', module=nn.ReLU, input_shape=(1,))", "Workload")])
def test_workloads_not_a_list(write_config, one_line, value, found):
    path = write_config(f"from torch import nn\nfrom bench import Workload\nWORKLOADS = {value}\n")
    one_line(str(_error(str(path))), str(path), "WORKLOADS", "a list of bench.Workload", found)


def test_non_workload_entries_each_get_a_line(write_config, one_line):
    path = write_config("""
        from torch import nn
        from bench import Workload
        WORKLOADS = [
            Workload(name="ok", module=nn.ReLU, input_shape=(2,)),
            nn.Linear(4, 4),
            ("name", nn.ReLU, (2,)),
        ]
    """)
    err = _error(str(path))
    assert len(err.problems) == 2
    one_line(str(err.problems[0]), str(path), "WORKLOADS[1]", "bench.Workload", "Linear")
    one_line(str(err.problems[1]), str(path), "WORKLOADS[2]", "tuple")


def test_load_suite_reports_every_file_at_once(write_config, tmp_path):
    good = write_config(VALID, "good.py")
    broken = write_config("WORKLOADS = (\n", "broken.py")
    empty = write_config("X = 1\n", "empty.py")
    with pytest.raises(BenchError) as info:
        load_suite([str(broken), str(good), str(empty), str(tmp_path / "gone.py")])
    wheres = [p.where for p in info.value.problems]
    assert len(wheres) == 3
    assert wheres[0].startswith(str(broken) + ":")
    assert wheres[1:] == [str(empty), str(tmp_path / "gone.py")]
    assert len(load_suite([str(good), "smoke"]).declared) == 1 + len(load_config("smoke").declared)


def test_tuple_of_workloads_is_accepted(write_config):
    path = write_config(VALID.replace("WORKLOADS = [", "WORKLOADS = (").replace("))]", ")),)"))
    assert [d.workload.name for d in load_config(str(path)).declared] == ["ok"]
