"""From a model to its layers: capture on the meta device against a real forward, grouping, depth, names, layer
factories that pickle, `list --model --json`, `run --model` through a worker, and every bad input as one line."""
from __future__ import annotations

import importlib.util
import json
import pickle
import textwrap

import cloudpickle
import pytest
import torch
from torch import nn

import bench
from bench import TensorSpec
from bench.cli.main import main
from bench.suite.capture import LayerFactory, capture, record_calls, workload_name
from bench.suite.models import expand
from bench.suite.workload import valid_name


# ---------------------------------------------------------------- small torch-only models
class Block(nn.Module):
    """A residual block whose ReLU runs twice (as ResNet's), beside a shared 1x1 conv."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


def cnn():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Block(8), Block(8), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 10))


class Tagger(nn.Module):
    """Token ids -> embedding -> two transformer layers (attention through functional calls) -> logits."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 5)

    def forward(self, ids):
        return self.head(self.encoder(self.embed(ids)))


def real_calls(factory, specs, depth=None):
    """The innermost calls of a real forward on CPU (the reference the meta capture must equal)."""
    torch.manual_seed(0)
    model = factory().eval()
    calls, _ = record_calls(model, [s.make("cpu") for s in specs], {}, depth=depth, high=50)
    return calls


@pytest.mark.parametrize("factory, specs", [
    (cnn, [TensorSpec((2, 3, 8, 8))]),
    (Tagger, [TensorSpec((2, 6), "int64")]),
])
def test_meta_capture_equals_a_real_forward(factory, specs):
    layers, _, _ = capture(factory, specs, name="m")
    real = real_calls(factory, specs)
    assert sum(layer.count for layer in layers) == len(real)
    meta_calls = [(c.path, c.inputs, c.outputs) for c in real]
    for layer in layers:
        for path in layer.paths:
            shapes = [(p, tuple(getattr(s, "shape", s) for s in i), o) for p, i, o in meta_calls if p == path]
            assert shapes, path
            assert all(tuple(getattr(s, "shape", s) for s in layer.call.inputs) == s for _, s, _ in shapes)
            assert all(layer.call.outputs == o for _, _, o in shapes)


def test_identical_layers_group_and_a_module_called_twice_counts_twice():
    layers, _, _ = capture(cnn, [TensorSpec((2, 3, 8, 8))], name="cnn")
    by_type = {}
    for layer in layers:
        by_type.setdefault(layer.call.module_type, []).append(layer)
    (convs3,) = [lay for lay in by_type["Conv2d"] if lay.count == 4]
    assert convs3.paths == ("1.conv1", "1.conv2", "2.conv1", "2.conv2")
    (relu,) = by_type["ReLU"]
    assert relu.count == 4 and relu.paths == ("1.relu", "2.relu")  # each block's ReLU runs twice
    assert [lay.count for lay in by_type["Conv2d"]] == [1, 4]


def test_attention_is_one_layer_and_depth_stops_at_blocks():
    layers, _, _ = capture(Tagger, [TensorSpec((2, 6), "int64")], name="t")
    attention = [lay for lay in layers if lay.call.module_type == "MultiheadAttention"]
    assert len(attention) == 1 and attention[0].count == 2
    q = attention[0].call.inputs
    assert [s.shape for s in q] == [(2, 6, 16)] * 3
    (embed,) = [lay for lay in layers if lay.call.module_type == "Embedding"]
    assert embed.call.inputs == (TensorSpec((2, 6), "int64", 0, 50),)
    blocks, _, _ = capture(Tagger, [TensorSpec((2, 6), "int64")], name="t", depth=3)
    (block,) = [lay for lay in blocks if lay.call.module_type == "TransformerEncoderLayer"]
    assert block.count == 2 and block.paths == ("encoder.layers.0", "encoder.layers.1")


def test_names_are_valid_stable_and_short():
    assert workload_name("resnet18", "layer1.0.conv1") == "resnet18.layer1.0.conv1"
    assert workload_name("m", "blocks.a b/c") == "m.blocks.a-b-c"
    long = workload_name("model", ".".join(["block"] * 40))
    assert len(long) == 100 and valid_name(long) and long == workload_name("model", ".".join(["block"] * 40))
    first = [w.name for w in expand(cnn, (2, 3, 8, 8), name="cnn")]
    assert first == [w.name for w in expand(cnn, (2, 3, 8, 8), name="cnn")]
    assert first[-1] == "cnn" and all(valid_name(n) for n in first)


def test_workloads_carry_their_origin():
    ws = bench.layers(cnn, (2, 3, 8, 8), name="cnn")
    model = ws[-1]
    assert model.origin.kind == "model" and model.origin.count == 1 and model.origin.module_type == "Sequential"
    layers = ws[:-1]
    assert {w.origin.kind for w in layers} == {"layer"} and all(w.origin.model == "cnn" for w in layers)
    assert sum(w.origin.count for w in layers) == len(real_calls(cnn, [TensorSpec((2, 3, 8, 8))]))


def test_layer_factories_pickle_and_rebuild_one_layer_with_random_weights():
    ws = bench.layers(Tagger, [TensorSpec((2, 6), "int64")], name="tagger")
    for w in ws:
        back = pickle.loads(cloudpickle.dumps(w))
        torch.manual_seed(0)
        built = back.module()
        assert not any(p.is_meta for p in built.parameters())
        if w.origin.kind == "layer":
            assert type(built).__name__ == w.origin.module_type
    (linear1,) = [w for w in ws if w.name.endswith("linear1")]
    layer = linear1.module()
    assert isinstance(linear1.module, LayerFactory) and layer.weight.shape == (32, 16)
    assert float(layer.weight.detach().std()) > 0.01


def _public(name: str, factory: str, spec: TensorSpec, depth=None):
    """A public architecture's capture against its real forward (skipped where the package is not installed)."""
    from bench.suite.vision import import_module

    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (make test installs it)")
    module = import_module(name) if name != "torchvision" else import_module("torchvision.models")
    build = getattr(module, factory)
    layers, _, specs = capture(lambda: build(pretrained=False) if name == "timm" else build(), [spec], name="m",
                               depth=depth)
    real = real_calls(lambda: build(pretrained=False) if name == "timm" else build(), specs, depth=depth)
    captured = {(p, tuple(s.shape for s in lay.call.inputs), lay.call.outputs) for lay in layers for p in lay.paths}
    assert captured == {(c.path, tuple(s.shape for s in c.inputs), c.outputs) for c in real}
    assert sum(lay.count for lay in layers) == len(real)
    return layers


def test_torchvision_resnet18_capture_equals_a_real_forward():
    layers = _public("torchvision", "resnet18", TensorSpec((1, 3, 32, 32)))
    assert max(lay.count for lay in layers) >= 4


def test_timm_model_capture_equals_a_real_forward():
    from bench.suite.vision import import_module

    if importlib.util.find_spec("timm") is None:
        pytest.skip("timm is not installed (make test installs it)")
    timm = import_module("timm")
    build = lambda: timm.create_model("convnext_atto", pretrained=False)  # noqa: E731 - a one-line factory
    layers, _, specs = capture(build, [TensorSpec((1, 3, 32, 32))], name="atto")
    assert sum(lay.count for lay in layers) == len(real_calls(build, specs))


# ---------------------------------------------------------------- the CLI
def _module(tmp_path, monkeypatch, text: str, name: str = "usermodels"):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(text), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


MODELS = """
import torch
from torch import nn

def mlp(hidden=16, act=True):
    return nn.Sequential(nn.Linear(8, hidden), nn.ReLU() if act else nn.Identity(), nn.Linear(hidden, 4))

def tagger():
    return nn.Sequential(nn.Embedding(30, 8), nn.Linear(8, 2))

def raises():
    raise ValueError("no such layer size")

class Fails(nn.Module):
    def forward(self, x):
        raise ValueError("forward broke")

def fails():
    return nn.Sequential(nn.Linear(8, 8), Fails())

class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
    def forward(self, x):
        return self.lin(x) if x.sum() > 0 else -x

def huge():
    return nn.Linear(200_000, 200_000)

class CpuOnly(nn.Module):
    def forward(self, x):
        if x.device.type == "cpu":
            raise RuntimeError("isolated forward broke")
        return x

def breaks_alone():
    return nn.Sequential(nn.Linear(8, 8), CpuOnly(), nn.Linear(8, 4))

NOT_CALLABLE = 3
"""


def test_list_model_json_fields(tmp_path, monkeypatch, capsys):
    name = _module(tmp_path, monkeypatch, MODELS)
    assert main(["list", "--model", f"{name}:mlp", "--input", "2,8", "--model-arg", "hidden=32",
                 "--model-arg", "act=False", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in rows] == ["layer", "layer", "layer", "model"]
    assert [r["name"] for r in rows] == ["mlp.0", "mlp.1", "mlp.2", "mlp"]
    for key in ("source", "input_shape", "output_shape", "dtype", "flops", "params", "bytes", "peak_bytes", "is_view",
                "shape_notes", "tags", "kind", "count", "paths", "module_type", "inputs"):
        assert all(key in r for r in rows), key
    assert rows[0]["output_shape"] == [2, 32] and rows[1]["module_type"] == "Identity"
    assert rows[-1] | {} and rows[-1]["count"] == 1 and rows[-1]["inputs"] == [{"shape": [2, 8], "dtype": "float32"}]
    assert rows[0]["paths"] == ["0"] and rows[0]["count"] == 1


def test_list_model_integer_input(tmp_path, monkeypatch, capsys):
    name = _module(tmp_path, monkeypatch, MODELS)
    assert main(["list", "--model", f"{name}:tagger", "--input", "2,5", "--input-dtype", "int64", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["module_type"] == "Embedding" and rows[0]["inputs"] == [{"shape": [2, 5], "dtype": "int64"}]
    assert rows[1]["inputs"] == [{"shape": [2, 5, 8], "dtype": "float32"}]


@pytest.mark.parametrize("argv, needles", [
    (["--model", "no_such_module_xyz:f", "--input", "2,8"], ["no_such_module_xyz", "importable"]),
    (["--model", "{m}:NOT_CALLABLE", "--input", "2,8"], ["NOT_CALLABLE", "callable"]),
    (["--model", "{m}:nothing", "--input", "2,8"], ["nothing", "callable"]),
    (["--model", "{m}:raises", "--input", "2,8"], ["raises", "no such layer size"]),
    (["--model", "{m}:mlp", "--input", "2,3,8,9"], ["mlp", "forward", "2,3,8,9"]),
    (["--model", "{m}:mlp", "--input", "2,8", "--input-dtype", "int64"], ["mlp", "int64[2,8]", "floating"]),
    (["--model", "{m}:mlp", "--input", "2,8", "--input-dtype", "int7"], ["mlp", "int7"]),
    (["--model", "{m}:fails", "--input", "2,8"], ["fails", "'1'", "forward broke"]),
    (["--model", "{m}:Branchy", "--input", "2,8"], ["Branchy", "meta", "data-dependent"]),
    (["--model", "{m}:huge", "--input", "2,200000"], ["huge", "GiB", "memory"]),
    (["--model", "{m}:mlp", "--input", "2,x"], ["--input", "2,x"]),
    (["--model", "{m}:mlp"], ["--input", "none"]),
    (["--input", "2,8"], ["--model"]),
    (["--model", "{m}:mlp", "--input", "2,8", "--model-arg", "=3"], ["--model-arg", "=3"]),
])
def test_bad_models_are_one_line_exit_2(tmp_path, monkeypatch, capsys, one_line, argv, needles):
    name = _module(tmp_path, monkeypatch, MODELS)
    assert main(["list", *[a.format(m=name) for a in argv]]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    one_line(out.err, *needles)


@pytest.mark.slow
def test_run_model_measures_layers_and_model_in_a_worker(tmp_path, monkeypatch, capsys):
    """`run --model`: one row per distinct layer and one for the model, through a worker process; a layer whose
    isolated forward fails gets its status and reason, the others run."""
    name = _module(tmp_path, monkeypatch, MODELS)
    # the worker cannot import the model's module (tmp_path is not on its path): the factory travels by value
    status = main(["run", "--model", f"{name}:breaks_alone", "--input", "2,8", "--device", "cpu", "--out",
                   str(tmp_path / "runs"), "--processes", "1", "--budget-s", "0.05", "--warmup-s", "0",
                   "--min-samples", "3"])
    assert status == 1  # rows failed: the layer alone, and the model
    run = bench.load(str(tmp_path / "runs"))
    frame = run.frame.set_index("workload")
    assert sorted(frame.index) == ["breaks_alone", "breaks_alone.0", "breaks_alone.1", "breaks_alone.2"]
    assert frame.loc["breaks_alone.1", "status"] == "error"
    assert "isolated forward broke" in frame.loc["breaks_alone.1", "reason"]
    assert frame.loc["breaks_alone.0", "status"] == "ok" and frame.loc["breaks_alone.2", "status"] == "ok"
    assert frame.loc["breaks_alone", "kind"] == "model" and frame.loc["breaks_alone.0", "kind"] == "layer"
    assert frame.loc["breaks_alone.1", "module_type"] == "CpuOnly" and frame.loc["breaks_alone.2", "paths"] == "2"
    assert set(frame["model"]) == {"breaks_alone"} and set(frame["count"]) == {1}


def test_config_models_expand_like_workloads(write_config):
    from bench.suite.config import load_config

    path = write_config("""
        from torch import nn
        from bench import Model, Workload
        WORKLOADS = [Workload(name="lin", module=lambda: nn.Linear(4, 4), input_shape=(2, 4))]
        MODELS = [Model(name="tiny", factory=lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU()), inputs=(2, 4))]
    """)
    cfg = load_config(str(path))
    assert [w.name for w in cfg.workloads] == ["lin", "tiny.0", "tiny.1", "tiny"]
    assert cfg.workloads[-1].origin.kind == "model"


@pytest.mark.slow
def test_a_torchvision_layer_reaches_a_worker():
    """A factory of an installed package travels by reference; unpickling it in the worker imports torchvision,
    which bench.suite.vision makes importable beside a CPU torch."""
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (make test installs it)")
    workloads = bench.layers("torchvision.models:alexnet", (1, 3, 63, 63))
    run = bench.run(workloads, device="cpu", processes=1, budget_s=0.02, warmup_s=0.0, min_samples=3,
                    filter="classifier.6")
    assert run.frame["workload"].tolist() == ["alexnet.classifier.6"] and run.frame["status"].tolist() == ["ok"]


@pytest.mark.slow
def test_config_models_run_in_a_worker(write_config, tmp_path):
    """A config's MODELS expanded again in the worker process: the same names, so every row is found there."""
    path = write_config("""
        from torch import nn
        from bench import Model
        MODELS = [Model(name="tiny", factory=lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8),
                                                                    nn.ReLU()), inputs=(2, 4))]
    """)
    run = bench.run(str(path), device="cpu", processes=1, budget_s=0.02, warmup_s=0.0, min_samples=3)
    frame = run.frame.set_index("workload")
    assert sorted(frame.index) == ["tiny", "tiny.0", "tiny.1", "tiny.2"]  # the two ReLUs are one layer
    assert set(frame["status"]) == {"ok"}
    assert frame.loc["tiny.1", "count"] == 2 and frame.loc["tiny.1", "paths"] == "1;3"
