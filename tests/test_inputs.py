"""A workload's inputs generalised: tensor specs (several, integer, bool) and keyword inputs, from the declaration
through planning, the variants and the results columns, measured in worker processes."""
from __future__ import annotations

import pickle

import cloudpickle
import pytest
import torch
from torch import nn

import bench
from bench import TensorSpec, Workload
from bench.measure.apply import convert, step
from bench.measure.args import Args
from bench.suite.plan import plan_one
from bench.suite.variants import Variant, skip_reason


class Masked(nn.Module):
    """A layer whose forward takes a mask keyword."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x, mask=None):
        return self.lin(x).masked_fill(~mask[..., None], 0.0)


def _mha():
    return nn.MultiheadAttention(16, 2, batch_first=True)


MHA = Workload(name="mha", module=_mha, inputs=(TensorSpec((2, 5, 16)),) * 3)
EMB = Workload(name="emb", module=lambda: nn.Embedding(100, 8), inputs=(TensorSpec((2, 7), "int64", 0, 100),))
MASKED = Workload(name="masked", module=Masked, inputs=(TensorSpec((2, 4, 8)),),
                  kwargs={"mask": TensorSpec((2, 4), "bool")})


def test_short_form_and_specs_agree():
    short = Workload(name="a", module=nn.ReLU, input_shape=(2, 3))
    long = Workload(name="a", module=nn.ReLU, inputs=[TensorSpec([2, 3])])
    assert long.input_shape == (2, 3) and long.inputs == (TensorSpec((2, 3)),)
    assert short.inputs_text == long.inputs_text == "float32[2,3]"
    assert Workload(name="b", module=nn.ReLU, input_shape=(2, 3), dtype="bfloat16").inputs_text == "bfloat16[2,3]"
    assert short.problems("x.py") == [] and long.problems("x.py") == []


def test_kwargs_are_stored_as_sorted_pairs_and_workloads_hash():
    w = Workload(name="m", module=Masked, inputs=(TensorSpec((2, 4, 8)),),
                 kwargs={"mask": TensorSpec((2, 4), "bool"), "flag": None})
    assert w.kwargs == (("flag", None), ("mask", TensorSpec((2, 4), "bool")))
    assert hash(w) == hash(w) and w == w
    assert w.inputs_text == "float32[2,4,8]; flag=None; mask=bool[2,4]"
    assert EMB.inputs_text == "int64[2,7]"


@pytest.mark.parametrize("kwargs, field, found", [
    (dict(inputs=(TensorSpec((2, 0)),)), "inputs[0].shape[1]", "0"),
    (dict(inputs=(TensorSpec((2, 3), "int65"),)), "inputs[0].dtype", "'int65'"),
    (dict(inputs=(TensorSpec((2, 3), "int64", 5, 5),)), "inputs[0].high", "5"),
    (dict(inputs=(TensorSpec((2, 3), "float32", 0),)), "inputs[0].low", "0"),
    (dict(inputs=(TensorSpec((2, 3)), [1, 2])), "inputs[1]", "list [1, 2]"),
    (dict(inputs=(TensorSpec((2, 3)),), kwargs={"1x": 3}), "kwargs", "'1x'"),
    (dict(inputs=(None,)), "inputs", "(None,)"),
    (dict(inputs=(TensorSpec((2, 3)),), input_shape=(4, 3)), "input_shape", "(4, 3)"),
])
def test_bad_inputs_are_one_line_problems(kwargs, field, found, one_line):
    problems = Workload(name="w", module=nn.ReLU, **kwargs).problems("cfg.py")
    assert len(problems) == 1, problems
    assert problems[0].field == field and problems[0].found == found
    one_line(str(problems[0]), "cfg.py", "w", field)


def test_plan_counts_every_input():
    plan = plan_one(MHA, "t")
    assert plan.output_shape == (2, 5, 16)
    assert plan.input_bytes == 3 * 2 * 5 * 16 * 4
    assert plan_one(EMB, "t").input_bytes == 2 * 7 * 8 and plan_one(EMB, "t").output_shape == (2, 7, 8)
    masked = plan_one(MASKED, "t")
    assert masked.input_bytes == 2 * 4 * 8 * 4 + 2 * 4 and masked.flops == 2 * 2 * 4 * 8 * 8


def test_variants_cast_floating_inputs_only():
    torch.manual_seed(0)
    args = Args.build(MASKED, "cpu")
    assert args.args[0].dtype == torch.float32 and args.kwargs["mask"].dtype == torch.bool
    _, cast = convert(Masked(), args, Variant(dtype="bfloat16"))
    assert cast.args[0].dtype == torch.bfloat16 and cast.kwargs["mask"].dtype == torch.bool
    ids = Args.build(EMB, "cpu").first
    assert ids.dtype == torch.int64 and 0 <= int(ids.min()) and int(ids.max()) < 100
    _, same = convert(nn.Embedding(100, 8), Args.build(EMB, "cpu"), Variant(dtype="float16", channels_last=True))
    assert same.first.dtype == torch.int64
    assert EMB.floating_ndim == 0 and MHA.floating_ndim == 3
    reason = skip_reason(Variant(channels_last=True), device="cpu", input_ndim=EMB.floating_ndim,
                         workload_dtype="float32")
    assert reason == "channels_last needs a 4-d floating input, this workload has none"


def test_backward_differentiates_floating_inputs_and_parameters():
    module = nn.Embedding(100, 8)
    grads = step(module, Args.build(EMB, "cpu"), Variant(backward=True))()
    assert len(grads) == 1 and grads[0].shape == (100, 8)  # the weights only: indices have no gradient
    mha = _mha()
    with torch.enable_grad():
        grads = step(mha, Args.build(MHA, "cpu"), Variant(backward=True))()
    assert len(grads) == 3 + len(list(mha.parameters()))


def test_workloads_pickle_by_value():
    """A lambda and a class of this test module (which a worker could not import) survive cloudpickle."""
    for w in (EMB, MASKED):
        back = pickle.loads(cloudpickle.dumps(w))
        assert back.name == w.name and back.inputs == w.inputs and isinstance(back.module(), nn.Module)


@pytest.mark.slow
def test_multi_input_integer_and_keyword_workloads_in_worker_processes(tmp_path):
    """Through a worker process (1 process, tiny budget): three query/key/value inputs, integer indices with their
    range, and a mask keyword; results.csv says every input in one column."""
    lin = Workload(name="lin", module=lambda: nn.Linear(8, 8), input_shape=(2, 8))
    run = bench.run([lin, MHA, EMB, MASKED], device="cpu", processes=1, budget_s=0.05, warmup_s=0.0, min_samples=3,
                    variants="bfloat16", out=tmp_path)
    frame = run.frame.set_index(["workload", "variant"])
    assert set(frame["status"]) == {"ok"}, frame[["status", "reason"]]
    assert frame.loc[("mha", "default"), "inputs"] == "float32[2,5,16]; float32[2,5,16]; float32[2,5,16]"
    assert frame.loc[("mha", "bfloat16"), "inputs"] == "float32[2,5,16]; float32[2,5,16]; float32[2,5,16]"
    assert frame.loc[("emb", "default"), "inputs"] == "int64[2,7]"
    assert frame.loc[("masked", "default"), "inputs"] == "float32[2,4,8]; mask=bool[2,4]"
    assert frame.loc[("masked", "default"), "input_shape"] == "[2, 4, 8]"
    assert run.frame.loc[run.frame["workload"] == "lin", "kind"].tolist() == ["", ""]  # written by hand
    assert (frame["count"] == 1).all()
    reloaded = bench.load(run.source)
    assert "inputs" in reloaded.frame.columns and set(reloaded.frame["count"]) == {1}
