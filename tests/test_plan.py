"""Plans (meta device) against a real torch forward on the CPU, and every error the planner must give."""
from __future__ import annotations

import dataclasses
import functools
import math

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bench import BenchError, Workload
from bench.suite.config import CONFIG_DIR, load_config
from bench.suite.plan import check, plan_one, plan_suite
from bench.suite.workload import Declared

SHIPPED = [c for c in ("seed", "smoke", "linear", "conv2d") if (CONFIG_DIR / f"{c}.py").is_file()]
DECLARED = [d for c in SHIPPED for d in load_config(c).declared]


def assert_one_line(text: str, *needles: str) -> None:
    assert "\n" not in text and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"


def real_forward(w: Workload, shape: tuple[int, ...]):
    """Build the workload for real on the CPU and run it once under FlopCounterMode: (module, x, out, flops)."""
    torch.manual_seed(0)
    module = w.module().to(dtype=w.torch_dtype).eval()
    x = torch.randn(shape, dtype=w.torch_dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module(x)
    return module, x, out, counter.get_total_flops()


def batch_dims(w: Workload) -> list[int]:
    """Dims the layer treats as batch: dim 0, and for a Linear every dim but the last (it acts on that one only)."""
    with torch.device("meta"):
        module = w.module()
    n = len(w.input_shape)
    if n < 2:
        return []
    return list(range(n - 1)) if isinstance(module, nn.Linear) else [0]


# ---------------------------------------------------------------- every shipped workload
@pytest.mark.parametrize("declared", DECLARED, ids=[d.workload.name for d in DECLARED])
def test_shipped_plan_matches_real_cpu_forward(declared):
    w = declared.workload
    dims = batch_dims(w)
    reduced = tuple(min(s, 2) if i in dims else s for i, s in enumerate(w.input_shape))
    module, x, out, real_flops = real_forward(w, reduced)

    small = plan_one(dataclasses.replace(w, input_shape=reduced), declared.source)
    assert small.output_shape == tuple(out.shape)
    assert small.flops == real_flops
    assert small.params == sum(p.numel() for p in module.parameters())
    aliases = out.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    assert small.is_view == aliases
    weights = sum(t.nbytes for t in [*module.parameters(), *module.buffers()])
    assert small.bytes_moved == weights + (0 if aliases else x.nbytes + out.nbytes)  # a view moves nothing

    # The full-size plan (meta only, nothing allocated) scales the batch dims of the real result.
    full = plan_one(w, declared.source)
    expected = tuple(w.input_shape[i] if i in dims else s for i, s in enumerate(out.shape))
    assert full.output_shape == expected
    scale_full = math.prod(w.input_shape[i] for i in dims)
    scale_small = math.prod(reduced[i] for i in dims)
    assert full.flops * scale_small == real_flops * scale_full
    assert full.params == small.params
    assert full.output_bytes == math.prod(expected) * out.element_size()


def test_every_shipped_config_plans_cleanly():
    plans, problems = plan_suite(DECLARED)
    assert problems == []
    assert len(plans) == len(DECLARED)
    assert "seed" in SHIPPED and "smoke" in SHIPPED


def _seed(name: str):
    [d] = [d for d in load_config("seed").declared if d.workload.name == name]
    return plan_one(d.workload, d.source)


def test_seed_conv11_shape_flops_and_formula():
    p = _seed("seed-conv11")
    assert p.output_shape == (256, 3, 217, 217)
    assert p.flops == 2 * 256 * 3 * 217 * 217 * 3 * 11 * 11
    assert round(p.flops / 1e9, 2) == 26.26
    assert p.params == 3 * 3 * 11 * 11 + 3
    assert p.shape_notes == (
        "module H: floor((227 + 2*0 - 1*(11 - 1) - 1) / 1) + 1 = 217",
        "module W: floor((227 + 2*0 - 1*(11 - 1) - 1) / 1) + 1 = 217",
    )
    assert p.bytes_moved == 4 * (256 * 3 * 227 * 227 + p.params + 256 * 3 * 217 * 217)


def test_seed_shapes_from_the_notes():
    assert _seed("seed-flatten").output_shape == (256, 784)
    assert _seed("seed-linear28x10").output_shape == (256, 1, 28, 10)
    assert _seed("seed-flatten-linear784x10").output_shape == (256, 10)
    assert _seed("seed-linear8x3").output_shape == (128, 64, 16, 3)
    conv4 = _seed("seed-conv4")
    assert conv4.output_shape == (256, 4, 13, 5)
    assert [n.rsplit("= ", 1)[1] for n in conv4.shape_notes] == ["13", "5"]


def test_flatten_is_a_view_and_moves_nothing():
    p = _seed("seed-flatten")
    assert p.is_view and p.flops == 0 and p.params == 0
    assert p.input_bytes == p.output_bytes == 256 * 784 * 4
    assert p.bytes_moved == 0
    assert not _seed("seed-flatten-linear784x10").is_view


# ---------------------------------------------------------------- hypothesis: plan == torch, or both refuse
def agrees_with_torch(w: Workload) -> None:
    try:
        module, _, out, flops = real_forward(w, w.input_shape)
    except Exception:  # noqa: BLE001 - torch refuses this layer/input: the planner must refuse it too
        event("torch refuses")
        with pytest.raises(BenchError) as info:
            plan_one(w, "hyp.py")
        assert len(info.value.problems) == 1
        assert_one_line(str(info.value), "hyp.py", f"workload '{w.name}'")
        return
    event("torch accepts")
    plan = plan_one(w, "hyp.py")
    assert plan.output_shape == tuple(out.shape)
    assert plan.flops == flops
    assert plan.params == sum(p.numel() for p in module.parameters())


HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPOTHESIS
@given(in_f=st.integers(1, 12), out_f=st.integers(1, 12), lead=st.lists(st.integers(1, 4), max_size=3),
       last=st.one_of(st.none(), st.integers(1, 12)), bias=st.booleans())
def test_generated_linear_agrees_with_torch(in_f, out_f, lead, last, bias):
    shape = (*lead, in_f if last is None else last)
    agrees_with_torch(Workload(name=f"lin-{in_f}-{out_f}", module=functools.partial(nn.Linear, in_f, out_f, bias=bias),
                               input_shape=shape))


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    cin = draw(st.integers(1, 3)) * groups if draw(st.integers(0, 3)) else draw(st.integers(1, 6))
    cout = draw(st.integers(1, 3)) * groups if draw(st.integers(0, 3)) else draw(st.integers(1, 6))
    pair = lambda lo, hi: st.tuples(st.integers(lo, hi), st.integers(lo, hi))  # noqa: E731 - a one-line strategy helper
    sizes = dict(kernel_size=draw(pair(1, 5)), stride=draw(pair(1, 3)), dilation=draw(pair(1, 2)),
                 padding=draw(st.one_of(pair(0, 2), st.sampled_from(["same", "valid"]))))
    if draw(st.integers(0, 5)) == 0:  # now and then a zero or negative size: torch builds some, then fails later
        sizes[draw(st.sampled_from(sorted(sizes)))] = draw(st.sampled_from([(0, 1), (1, 0), (-1, 1), (0, 0)]))
    channels = cin if draw(st.integers(0, 4)) else draw(st.integers(1, 6))  # mostly matching, sometimes not
    batch = draw(st.sampled_from([(), (1,), (2,)]))  # () = an unbatched [C, H, W] input
    shape = (*batch, channels, draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    module = functools.partial(nn.Conv2d, cin, cout, groups=groups, **sizes)
    return Workload(name=f"conv-{cin}-{cout}-k{sizes['kernel_size']}", module=module, input_shape=shape)


@HYPOTHESIS
@given(conv_cases())
def test_generated_conv2d_agrees_with_torch(workload):
    agrees_with_torch(workload)


# ---------------------------------------------------------------- every error case, one line each, all at once
HELPERS = """
import torch
from torch import nn
from bench import Workload


def regrouped():
    m = nn.Conv2d(6, 8, 3)
    m.groups = 4  # only a mutated layer gets past Conv2d's own constructor check
    return m


class Raises(nn.Module):
    def forward(self, x):
        raise ValueError("first line\\nsecond line")
"""

# name -> (the module= source, input_shape, the field at fault, needles in the message)
ERRORS = {
    "seed-conv5-on-rgb": ("lambda: nn.Conv2d(5, 4, 4)", (256, 3, 227, 227), "module.in_channels",
                          ["expected 3", "found 5"]),
    "linear-last-dim": ("lambda: nn.Linear(784, 10)", (256, 1, 28, 28), "module.in_features",
                        ["expected 28", "found 784"]),
    "nested-linear": ("lambda: nn.Sequential(nn.Flatten(), nn.Linear(100, 10))", (2, 1, 28, 28),
                      "module.1.in_features", ["expected 784", "found 100"]),
    "kernel-too-big": ("lambda: nn.Conv2d(3, 8, 11)", (2, 3, 8, 8), "module.kernel_size", ["8 + 2*0 = 8", "found 11"]),
    "kernel-too-big-padded": ("lambda: nn.Conv2d(3, 8, 11, padding=1)", (2, 3, 8, 8), "module.kernel_size",
                              ["8 + 2*1 = 10"]),
    "dilated-too-big": ("lambda: nn.Conv2d(3, 8, 3, dilation=5)", (2, 3, 8, 8), "module.kernel_size", ["spanning 11"]),
    "groups-ctor": ("lambda: nn.Conv2d(6, 8, 3, groups=4)", (2, 6, 8, 8), "module", ["groups"]),
    "groups-mutated": ("regrouped", (2, 6, 8, 8), "module.groups", ["in_channels 6", "found 4"]),
    "zero-batch": ("lambda: nn.Linear(4, 4)", (0, 4), "input_shape[0]", ["positive integer", "found 0"]),
    "negative-dim": ("lambda: nn.Linear(4, 4)", (2, -4), "input_shape[1]", ["found -4"]),
    "float-dim": ("lambda: nn.Linear(4, 4)", (2.5, 4), "input_shape[0]", ["found 2.5"]),
    "zero-out-features": ("lambda: nn.Linear(4, 0)", (2, 4), "module.out_features", ["found 0"]),
    "zero-out-channels": ("lambda: nn.Conv2d(3, 0, 3)", (2, 3, 8, 8), "module.out_channels", ["found 0"]),
    "zero-kernel": ("lambda: nn.Conv2d(3, 4, 0)", (2, 3, 8, 8), "module.kernel_size", ["found (0, 0)"]),
    "zero-stride": ("lambda: nn.Conv2d(3, 4, 3, stride=0)", (2, 3, 8, 8), "module.stride", ["found (0, 0)"]),
    "negative-padding": ("lambda: nn.Conv2d(3, 4, 3, padding=-1)", (2, 3, 8, 8), "module.padding", ["found (-1, -1)"]),
    "zero-dilation": ("lambda: nn.Conv2d(3, 4, 3, dilation=0)", (2, 3, 8, 8), "module.dilation", ["found (0, 0)"]),
    "negative-features": ("lambda: nn.Linear(-1, 4)", (2, 4), "module", ["negative dimension"]),
    "float-features": ("lambda: nn.Linear(2.5, 4)", (2, 4), "module", ["TypeError"]),
    "not-callable": ("'Linear(4, 4)'", (2, 4), "module", ["callable", "str"]),
    "returns-string": ("lambda: 'Linear(4, 4)'", (2, 4), "module", ["returned str"]),
    "returns-tensor": ("lambda: torch.zeros(4)", (2, 4), "module", ["returned Tensor"]),
    "builder-raises": ("lambda: 1 / 0", (2, 4), "module", ["ZeroDivisionError"]),
    "forward-raises": ("Raises", (2, 4), "module", ["ValueError: first line"]),
    "conv-on-2d-input": ("lambda: nn.Conv2d(3, 4, 3)", (3, 8), "module input", ["4-d", "found 2-d"]),
}
GOOD = {"good-linear": ("lambda: nn.Linear(4, 2)", (2, 4)),
        "good-padded-kernel": ("lambda: nn.Conv2d(3, 8, 11, padding=2)", (2, 3, 8, 8))}


@pytest.fixture
def error_config(write_config):
    entries = "".join(f"    Workload(name={name!r}, module={mod}, input_shape={shape!r}),\n"
                      for name, (mod, shape, *_) in {**ERRORS, **GOOD}.items())
    return write_config(HELPERS + "\n\nWORKLOADS = [\n" + entries + "]\n", "errors.py")


def test_every_error_case_is_one_line_naming_file_workload_field(error_config, repo_root):
    declared = load_config(str(error_config)).declared
    plans, problems = plan_suite(declared)
    assert sorted(p.name for p in plans) == sorted(GOOD)
    by_name = {p.workload: p for p in problems}
    assert len(problems) == len(ERRORS) == len(by_name), [str(p) for p in problems]  # all at once, one each
    for name, (_, _, field, needles) in ERRORS.items():
        p = by_name[name]
        assert p.field == field, str(p)
        assert_one_line(str(p), str(error_config), f"workload '{name}'", f": {field}:", "expected", *needles)
    assert "second line" not in str(by_name["forward-raises"])
    with pytest.raises(BenchError) as info:
        check(declared)
    assert len(info.value.problems) == len(ERRORS)


def test_broken_config_reports_each_workload_once(repo_root):
    declared = load_config("broken").declared
    plans, problems = plan_suite(declared)
    assert plans == []
    assert [p.workload for p in problems] == [d.workload.name for d in declared]
    first = str(problems[0])
    assert_one_line(first, "configs/broken.py", "seed-conv5-on-rgb", "in_channels", "3", "5")


def _declared(source: str, *names: str) -> list[Declared]:
    return [Declared(workload=Workload(name=n, module=nn.ReLU, input_shape=(2,)), source=source) for n in names]


def test_duplicate_names_in_one_file():
    plans, problems = plan_suite(_declared("a.py", "x", "y", "x", "x"))
    [p] = problems
    assert p.field == "name" and p.workload == "x"
    assert_one_line(str(p), "a.py", "workload 'x'", "name", "unique", "3 workloads")


def test_duplicate_names_across_two_config_files(write_config):
    text = ("from torch import nn\nfrom bench import Workload\n"
            "WORKLOADS = [Workload(name='same', module=nn.ReLU, input_shape=(2,))]\n")
    a, b = write_config(text, "a.py"), write_config(text, "b.py")
    from bench.suite.config import load_suite

    _, problems = plan_suite(load_suite([str(a), str(b)]).declared)
    [p] = problems
    assert_one_line(str(p), "workload 'same'", "name", str(a), str(b))


def test_unhashable_name_is_a_problem_not_a_crash():
    w = Workload(name=["a"], module=nn.ReLU, input_shape=(2,))
    _, problems = plan_suite([Declared(workload=w, source="a.py")])
    assert [p.field for p in problems] == ["name"]


def test_planning_allocates_nothing_real():
    built = []

    def builder():
        m = nn.Conv2d(3, 3, 11)
        built.append(m)
        return m

    plan = plan_one(Workload(name="big", module=builder, input_shape=(256, 3, 227, 227)), "x.py")
    assert plan.output_shape == (256, 3, 217, 217)
    assert {p.device.type for p in built[0].parameters()} == {"meta"}
