"""Evidence for docs/models.md: the meta-device capture against a real forward on public architectures, and the
time `layerbench list --model` takes for a ResNet-50. Times nothing else; writes docs/evidence/models-*.txt.

For each architecture, at a small batch: bench.suite.capture.capture on the meta device, then a real forward on
the CPU (random weights) with the same hooks. Checked: the (path, input shapes, output specs) of the real forward's
innermost calls are exactly those of the captured layers and their paths (a path called with different shapes,
ResNet's ReLU, belongs to several layers), and the captured counts add up to the real forward's innermost calls.

    python tests/perf/models_eval.py            # both evidence files
    python tests/perf/models_eval.py --shapes   # the shapes only
    python tests/perf/models_eval.py --list-time
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.suite.capture import capture, record_calls  # noqa: E402 - after the path is set
from bench.suite.inputs import TensorSpec  # noqa: E402 - after the path is set
from bench.suite.vision import import_module, torchvision  # noqa: E402 - after the path is set

EVIDENCE = ROOT / "docs" / "evidence"
IMAGE = TensorSpec((2, 3, 64, 64))


def architectures() -> list[tuple[str, object, list[TensorSpec]]]:
    """(name, factory, inputs): torchvision's, timm's and a BERT from a small config, random weights."""
    tv = torchvision().models
    timm = import_module("timm")
    transformers = import_module("transformers")

    def bert():
        config = transformers.BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                         intermediate_size=128, max_position_embeddings=64)
        return transformers.BertModel(config, add_pooling_layer=True).eval()

    return [
        ("alexnet", lambda: tv.alexnet(weights=None), [IMAGE]),
        ("resnet50", lambda: tv.resnet50(weights=None), [IMAGE]),
        ("vgg11", lambda: tv.vgg11(weights=None), [TensorSpec((1, 3, 64, 64))]),
        ("mobilenet_v3_small", lambda: tv.mobilenet_v3_small(weights=None), [IMAGE]),
        ("densenet121", lambda: tv.densenet121(weights=None), [IMAGE]),
        ("efficientnet_b0", lambda: tv.efficientnet_b0(weights=None), [IMAGE]),
        ("convnext_tiny", lambda: tv.convnext_tiny(weights=None), [IMAGE]),
        ("vit_b_16", lambda: tv.vit_b_16(weights=None, image_size=64), [IMAGE]),
        ("timm-vit_tiny_patch16_224", lambda: timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64),
         [IMAGE]),
        ("timm-convnext_atto", lambda: timm.create_model("convnext_atto", pretrained=False), [IMAGE]),
        ("bert-small-config", bert, [TensorSpec((2, 16), "int64", 0, 1000)]),
    ]


def check(name: str, factory, inputs: list[TensorSpec]) -> str:
    started = time.perf_counter()
    layers, _, specs = capture(factory, inputs, name=name)
    capture_s = time.perf_counter() - started
    torch.manual_seed(0)
    model = factory().eval()
    real, _ = record_calls(model, [s.make("cpu") for s in specs], {}, depth=None, high=specs[0].range[1])
    def shapes_of(inputs) -> tuple:
        return tuple(getattr(v, "shape", v) for v in inputs)

    captured = {(path, shapes_of(layer.call.inputs), layer.call.outputs) for layer in layers for path in layer.paths}
    seen = {(c.path, shapes_of(c.inputs), c.outputs) for c in real}
    mismatched = sorted(p for p, _, _ in captured ^ seen)
    counted = sum(layer.count for layer in layers)
    verdict = "ok" if not mismatched and counted == len(real) else f"MISMATCH {mismatched[:3]}"
    shown = "; ".join(s.text() for s in specs)
    return (f"{name:28s} {shown:22s} distinct layers {len(layers):4d}  captured calls {counted:4d}  real innermost "
            f"calls {len(real):4d}  capture {capture_s:6.2f} s  {verdict}")


def header(command: str) -> str:
    return (f"command: {command}\nmachine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, torch {torch.__version__}\n")


def shapes() -> str:
    lines = []
    for name, factory, inputs in architectures():
        lines.append(check(name, factory, inputs))
        print(lines[-1], flush=True)
    failed = sum("MISMATCH" in line for line in lines)
    return "\n".join(lines) + (f"\n\n{len(lines) - failed} of {len(lines)} architectures: captured shapes and counts "
                               "equal the real forward's\n")


def list_time(runs: int = 3) -> str:
    command = [sys.executable, "-m", "bench", "list", "--model", "torchvision.models:resnet50", "--input",
               "1,3,224,224", "--json"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    lines = []
    for i in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        rows = done.stdout.count('"kind"')
        lines.append(f"run {i + 1}: exit {done.returncode}, {rows} workloads listed, {wall:.1f} s wall, "
                     f"{cpu:.1f} s CPU (process start, imports, capture, planning every workload on meta)")
    from bench.api.models import layers
    from bench.suite.config import from_workloads
    from bench.suite.plan import plan_suite

    for i in range(runs):  # in this process, imports done: the capture and the planning alone
        started, cpu_started = time.perf_counter(), time.process_time()
        workloads = layers("torchvision.models:resnet50", (1, 3, 224, 224))
        plans, _ = plan_suite(from_workloads(workloads).declared)
        lines.append(f"in process {i + 1}: bench.layers and planning {len(plans)} workloads: "
                     f"{time.perf_counter() - started:.2f} s wall, {time.process_time() - cpu_started:.2f} s CPU")
    load = os.getloadavg()[0]
    return "\n".join(lines) + f"\nload average (1 min) after the runs: {load:.1f} on {os.cpu_count()} CPUs\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", action="store_true", help="the shapes evidence only")
    parser.add_argument("--list-time", action="store_true", help="the list time evidence only")
    args = parser.parse_args()
    EVIDENCE.mkdir(parents=True, exist_ok=True)
    if not args.list_time:
        text = header("python tests/perf/models_eval.py") + "\n" + shapes()
        (EVIDENCE / "models-shapes.txt").write_text(text, encoding="utf-8")
    if not args.shapes:
        command = "layerbench list --model torchvision.models:resnet50 --input 1,3,224,224 --json"
        text = header(command) + "\n" + list_time()
        (EVIDENCE / "models-list-time.txt").write_text(text, encoding="utf-8")
        print(text)


if __name__ == "__main__":
    main()
