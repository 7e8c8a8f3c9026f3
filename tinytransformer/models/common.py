"""What the three model families share: GPT-2-style initialisation and a parameter summary."""
from __future__ import annotations

import math

from .. import backend
from ..embedding import Embedding
from ..linear import Linear
from ..module import Module
from ..positional import LearnedPositionalEncoding


def init_gpt2(model: Module, n_layer: int, rng, std: float = 0.02) -> None:
    """GPT-2's initialisation: weights ~ N(0, 0.02²), biases 0 (LayerNorm keeps γ = 1, β = 0).

    The projections that write into the residual stream (attention's out_proj, the FFN's fc2) get
    std 0.02/√(2·n_layer): each block adds two such terms to the stream, and scaling them down keeps the
    stream's variance from growing with depth.
    """
    residual_std = std / math.sqrt(2 * n_layer)
    for name, module in model.named_modules():
        if isinstance(module, Linear):
            writes_residual = name.endswith("out_proj") or name.endswith("fc2")
            weight = module.weight.data
            weight[...] = backend.randn(weight.shape, residual_std if writes_residual else std, rng,
                                        weight.dtype)
            if module.bias is not None:
                module.bias.data.fill(0)
        elif isinstance(module, (Embedding, LearnedPositionalEncoding)):
            weight = module.weight.data
            weight[...] = backend.randn(weight.shape, std, rng, weight.dtype)


def summary(model: Module) -> str:
    """A table of every parameter: name, shape, count; and the total."""
    rows = [(name, tuple(p.data.shape), int(p.data.size)) for name, p in model.named_parameters()]
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{type(model).__name__}", f"{'parameter'.ljust(width)}  {'shape':>16}  {'count':>10}"]
    lines += [f"{name.ljust(width)}  {str(shape):>16}  {count:>10,}" for name, shape, count in rows]
    lines.append(f"{'total'.ljust(width)}  {'':>16}  {model.num_parameters():>10,}")
    return "\n".join(lines)
