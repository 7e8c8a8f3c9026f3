"""Softmax cross-entropy: the loss of next-token prediction and of classification."""
from __future__ import annotations

from ..backend import xp
from ..module import Module, check_token_ids


class CrossEntropyLoss(Module):
    """loss = (1/N) Σ_i [ log Σ_v exp(z_iv) − z_i,y_i ] over the N targets that are not ``ignore_index``.

    Fused softmax + negative log-likelihood, numerically stable: log Σ exp is computed after subtracting
    each row's maximum, so no exp overflows, and log-probabilities never pass through log(softmax).

    Backward (with dloss the upstream scalar, usually 1):
        dz_i = dloss · (softmax(z_i) − onehot(y_i)) / N   for kept targets,   0 for ignored ones.

    Shapes: logits [..., V], targets [...] integer ids. With every target ignored the loss is 0 and the
    gradient 0 (PyTorch would return NaN).
    """

    def __init__(self, ignore_index: int = -100):
        self.ignore_index = ignore_index
        self.probs = None   # softmax(z) [N, V]: the backward starts from it
        self.rows = None    # arange(N), to index each row's target
        self.targets = None # y with ignored entries replaced by 0 [N]
        self.weight = None  # keep_i / N [N, 1]: 0 for ignored targets
        self.shape = None   # logits' shape, to hand the gradient back in it

    def forward(self, logits, targets):
        V = logits.shape[-1]
        if tuple(targets.shape) != tuple(logits.shape[:-1]):
            raise ValueError(f"CrossEntropyLoss: targets {tuple(targets.shape)} must have the shape of "
                             f"logits without the last axis, {tuple(logits.shape[:-1])}.")
        check_token_ids(targets, V, "CrossEntropyLoss (targets)", allowed_extra=self.ignore_index)
        z = logits.reshape(-1, V)                                                # [N, V]
        y = targets.reshape(-1)                                                  # [N]
        keep = y != self.ignore_index                                            # [N]
        n_kept = xp.maximum(keep.sum(), 1).astype(z.dtype)                       # scalar
        shifted = z - z.max(axis=1, keepdims=True)                               # [N, V], max 0 per row
        log_sum_exp = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))         # [N, 1]
        log_probs = shifted - log_sum_exp                                        # [N, V]
        self.rows = xp.arange(z.shape[0])
        self.targets = xp.where(keep, y, 0)                                      # any valid id for ignored rows
        self.weight = (keep.astype(z.dtype) / n_kept)[:, None]                   # [N, 1]
        self.probs = xp.exp(log_probs)                                           # [N, V]
        self.shape = logits.shape
        nll = -log_probs[self.rows, self.targets]                                # [N]
        return (nll * self.weight[:, 0]).sum()                                   # scalar

    def backward(self, dloss=1.0):
        dz = self.probs.copy()                                                   # [N, V]
        dz[self.rows, self.targets] -= 1.0                                       # softmax − onehot
        dz *= self.weight * dloss                                                # mean over kept targets
        return dz.reshape(self.shape)
