"""The same GPT in PyTorch: the reference that scripts/bench.py times and tests compare against.

Only for benchmarks and oracle tests (the package itself never imports torch). The architecture is
tinytransformer.models.GPT's, layer for layer, so ``load_from`` can copy its weights across:

    token embedding + learned positions -> n_layer × [x + Attn(LN(x)); x + FFN(LN(x))] -> LN -> tied head

Attention runs either through ``F.scaled_dot_product_attention`` (PyTorch's fused kernel, nanoGPT's
"flash" path) or written out as softmax(QKᵀ/√d_k)V with a causal mask (nanoGPT's fallback).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, n_embd, n_head, bias, dropout, fused):
        super().__init__()
        self.n_head, self.fused, self.dropout = n_head, fused, dropout
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)  # Q, K, V in one product, as nanoGPT
        self.out_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in self.c_attn(x).split(C, dim=2))
        if self.fused:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.dropout if self.training else 0.0)
        else:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1])
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            y = self.attn_drop(scores.masked_fill(~mask, float("-inf")).softmax(-1)) @ v
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, bias, dropout, fused):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(n_embd, bias=bias), nn.LayerNorm(n_embd, bias=bias)
        self.attn = Attention(n_embd, n_head, bias, dropout, fused)
        self.fc1 = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.fc2 = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x):
        x = x + self.drop1(self.attn(self.ln1(x)))
        return x + self.drop2(self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh")))


class TorchGPT(nn.Module):
    """A GPT with tinytransformer's GPTConfig (pre-norm, learned positions, tied head)."""

    def __init__(self, config, fused_attention: bool = True):
        super().__init__()
        c = config
        if c.norm != "pre" or c.positional != "learned" or not c.tie_weights or c.activation != "gelu":
            raise ValueError("TorchGPT mirrors the pre-norm, learned-position, tied, GELU GPT only.")
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c.n_embd, c.n_head, c.bias, c.dropout, fused_attention)
                                    for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd, bias=c.bias)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(T, device=idx.device)))
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.T  # tied output layer
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss

    @torch.no_grad()
    def load_from(self, model) -> None:
        """Copy a tinytransformer GPT's weights (its Linear weights are [in, out]: transpose)."""
        from tinytransformer import backend
        state = {name: backend.to_numpy(p.data) for name, p in model.named_parameters()}

        def put(param, array, transpose=False):
            param.copy_(torch.from_numpy(np.ascontiguousarray(array.T if transpose else array)))

        def put_norm(norm, name):
            put(norm.weight, state[name + ".weight"])
            if norm.bias is not None:
                put(norm.bias, state[name + ".bias"])

        put(self.wte.weight, state["wte.weight"])
        put(self.wpe.weight, state["wpe.weight"])
        for i, block in enumerate(self.blocks):
            prefix = f"blocks.{i}."
            attn, ffn = prefix + "self_attn.", prefix + "ffn."
            put_norm(block.ln1, attn + "ln")
            put_norm(block.ln2, ffn + "ln")
            qkv = [attn + "sublayer." + name for name in ("q_proj", "k_proj", "v_proj")]
            put(block.attn.c_attn.weight, np.concatenate([state[n + ".weight"].T for n in qkv]))  # [3d, d]
            if block.attn.c_attn.bias is not None:
                put(block.attn.c_attn.bias, np.concatenate([state[n + ".bias"] for n in qkv]))
            pairs = [(block.attn.out_proj, attn + "sublayer.out_proj"),
                     (block.fc1, ffn + "sublayer.fc1"), (block.fc2, ffn + "sublayer.fc2")]
            for linear, name in pairs:
                put(linear.weight, state[name + ".weight"], transpose=True)
                if linear.bias is not None:
                    put(linear.bias, state[name + ".bias"])
        put_norm(self.ln_f, "ln_f")

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
