"""Token embedding: a lookup table of learned vectors, one row per token id."""
from __future__ import annotations

from .. import backend
from ..module import Module, Parameter, check_token_ids


class Embedding(Module):
    """y[b, t] = W[idx[b, t]]: row ``idx`` of the table W [vocab_size, d_model].

    The lookup is the same as multiplying a one-hot row vector by W, so its backward is that product's
    weight gradient: each output gradient is added back into the row it came from,

        dW[v] += Σ_{(b,t): idx[b,t] = v} dy[b, t]

    A token that appears several times receives the sum of its gradients (a *scatter-add*; a plain
    ``dW[idx] += dy`` would keep only one of the repeats). There is no gradient for the integer ids.

    Initialisation: Normal(0, 1), as PyTorch (GPT-style models re-initialise with std 0.02).
    """

    def __init__(self, vocab_size: int, d_model: int, rng=None):
        self.vocab_size, self.d_model = vocab_size, d_model
        self.weight = Parameter(backend.randn((vocab_size, d_model), rng=rng))
        self.idx = None  # token ids, kept to know which rows receive the gradient

    def forward(self, idx):
        check_token_ids(idx, self.vocab_size, "Embedding")
        self.idx = idx
        return self.weight.data[idx]                                # [B, T] -> [B, T, d_model]

    def backward(self, dy):
        backend.scatter_add(self.weight.grad,                       # [vocab_size, d_model]
                            self.idx.reshape(-1),                   # [B*T]
                            dy.reshape(-1, self.d_model))           # [B*T, d_model]
        return None  # token ids are integers: no gradient flows to them
