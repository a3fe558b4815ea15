"""Linear layers at the sizes real models use: MLP heads and transformer blocks.

Tokens = batch x sequence, flattened into the leading dimensions (Linear acts on the last one).
A sweep is plain Python: the list below is a comprehension over (model, layer, tokens, dtype).
"""
import itertools

from torch import nn

from bench import Workload

# (model, layer, in_features, out_features): the projections of well-known blocks.
LAYERS = [
    ("mlp", "hidden", 784, 256),
    ("bert-base", "qkv", 768, 3 * 768),
    ("bert-base", "ffn-up", 768, 3072),
    ("bert-base", "ffn-down", 3072, 768),
    ("llama-7b", "attn-out", 4096, 4096),
    ("llama-7b", "ffn-up", 4096, 11008),
]
TOKENS = [(8, 128), (1, 2048)]  # (batch, sequence): a small batch of sentences, one long prompt
DTYPES = ["float32", "bfloat16"]

WORKLOADS = [
    Workload(
        name=f"{model}-{layer}-b{batch}s{seq}-{dtype}",
        module=lambda i=fin, o=fout: nn.Linear(i, o),
        input_shape=(batch, seq, fin),
        dtype=dtype,
        tags=("linear", model),
        note=f"Linear({fin}, {fout}) on {batch * seq} tokens",
    )
    for (model, layer, fin, fout), (batch, seq), dtype in itertools.product(LAYERS, TOKENS, DTYPES)
] + [
    # The square matmul the peers' anchors use (ANCHORS.md: 8192^3 on an H100, 4096^3 on the CPU).
    Workload(name="square-4096-float32", module=lambda: nn.Linear(4096, 4096, bias=False), input_shape=(4096, 4096),
             tags=("linear", "square"), note="a 4096^3 matmul: 137 GFLOP"),
]
