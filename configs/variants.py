"""The seed workloads under a sweep of variants: `python -m bench run variants` (then `python -m bench report`).

VARIANTS is read by `bench run` for this config (as if given with --variants); what a device cannot run is
recorded there as "not-applicable" with the reason (TF32, cudnn.benchmark and CUDA graphs on the CPU; channels_last on
an input that is not 4-d; a CPU thread count on CUDA). Sweeps are plain Python: `sweep` is a cross product.
"""
from bench.suite.config import load_config
from bench.suite.variants import Variant, sweep

WORKLOADS = list(load_config("seed").workloads)

VARIANTS = [
    # precision x layout: the default, bfloat16 and float16, each in NCHW and channels_last (+ cudnn.benchmark)
    *sweep(dtype=("", "bfloat16", "float16"), channels_last=(False, True)),
    *sweep(dtype=("bfloat16", "float16"), channels_last=(True,), cudnn_benchmark=(True,)),
    # float32 with TF32 forbidden and allowed for both matmuls and convs (CUDA only)
    *sweep(dtype=("float32",), tf32=(False, True)),
    Variant(cuda_graph=True),  # replay for the launch-bound Linear layers (CUDA only)
    Variant(backward=True),  # forward + backward
    Variant(threads=1),  # one CPU thread against torch's default
]
