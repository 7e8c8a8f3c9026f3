"""A recurrent network (tanh RNN): the sequence model attention replaced.

An RNN reads a sequence one position at a time and carries what it has seen in a hidden state h: each
step mixes the new input into the old state. Position t can only be computed once t − 1 is done, and the
first token reaches the last only through every state in between (lessons/03 measures both).
"""
from __future__ import annotations

import math

from .. import backend
from ..backend import xp
from ..module import Module, Parameter, check_input_dtype, check_last_dim


class RNN(Module):
    """h_t = tanh(x_t W_xh + h_{t−1} W_hh + b),  t = 0 .. T−1,  h_{−1} = h0 (zeros by default).

    Shapes: x [B, T, d_in], h0 [B, d_hidden], W_xh [d_in, d_hidden], W_hh [d_hidden, d_hidden],
    b [d_hidden]; the output is every hidden state, h [B, T, d_hidden].

    Forward: the input term x_t W_xh + b does not depend on h, so it is one product for all positions;
    the recurrent term needs h_{t−1}, so the loop over t is sequential: T dependent steps.

    Backward through time, from dh [B, T, d_hidden] (the loss's gradient at each output), walking the
    loop backwards with dnext = ∂loss/∂h_t arriving from step t + 1 (0 after the last):

        da_t    = (dh_t + dnext) ⊙ (1 − h_t²)        tanh'(a) = 1 − tanh(a)²
        dW_hh  += h_{t−1}ᵀ da_t                     dnext = da_t W_hhᵀ   (for step t − 1)
        dW_xh  += Σ_t x_tᵀ da_t      db += Σ_{b,t} da_t      dx_t = da_t W_xhᵀ      dh0 = dnext at t = 0

    So the gradient that reaches h_{t−k} from h_t is multiplied by k Jacobians diag(1 − h²) W_hhᵀ: it
    shrinks like (σ_max(W_hh) · tanh')ᵏ when that is below 1 (vanishing gradients), grows when above.

    Initialisation: uniform(±1/√d_hidden) for every weight, as ``torch.nn.RNN``. PyTorch keeps two biases,
    b_ih and b_hh, that are only ever added together; one b is the same model.
    """

    def __init__(self, d_in: int, d_hidden: int, rng=None):
        self.d_in, self.d_hidden = d_in, d_hidden
        bound = 1.0 / math.sqrt(d_hidden)
        rng = rng if rng is not None else backend.host_rng()

        def uniform(shape):
            return Parameter(backend.asarray(rng.uniform(-bound, bound, shape), dtype=backend.default_dtype()))
        self.W_xh = uniform((d_in, d_hidden))
        self.W_hh = uniform((d_hidden, d_hidden))
        self.bias = uniform(d_hidden)
        self.x = None        # the input, for dW_xh = Σ x_tᵀ da_t
        self.h0 = None       # the initial state, for step 0's dW_hh
        self.h = None        # every hidden state [B, T, d_hidden]: tanh' = 1 − h² and dW_hh need them
        self.h0_given = False  # whether backward also returns dh0
        self.steps = 0       # how many sequential steps the last forward's loop took

    def forward(self, x, h0=None):
        """x [B, T, d_in] (and optionally h0 [B, d_hidden]) -> every hidden state h [B, T, d_hidden]."""
        check_last_dim(x, self.d_in, "RNN", "d_in")
        if x.ndim != 3:
            raise ValueError(f"RNN expects x of shape [B, T, d_in], got {tuple(x.shape)}. One sequence is a "
                             "batch of one: x[None] has shape [1, T, d_in].")
        check_input_dtype(x, self.W_hh.data, "RNN")
        B, T, _ = x.shape
        self.h0_given = h0 is not None
        if h0 is None:
            h0 = xp.zeros((B, self.d_hidden), dtype=x.dtype)
        elif tuple(h0.shape) != (B, self.d_hidden):
            raise ValueError(f"RNN: h0 must have shape [B, d_hidden] = {[B, self.d_hidden]}, got "
                             f"{tuple(h0.shape)}. It is one starting state per sequence of the batch.")
        else:
            check_input_dtype(h0, self.W_hh.data, "RNN", "h0")
        # The input term of every position at once: it does not wait for any h.
        xw = (x.reshape(-1, self.d_in) @ self.W_xh.data).reshape(B, T, self.d_hidden)  # [B, T, d_hidden]
        xw += self.bias.data                                                           # [B, T, d_hidden]
        h = xp.empty((B, T, self.d_hidden), dtype=x.dtype)
        h_prev = h0                                                                    # [B, d_hidden]
        self.steps = 0
        for t in range(T):  # sequential: step t needs step t − 1's result
            h_prev = xp.tanh(xw[:, t] + h_prev @ self.W_hh.data)                       # [B, d_hidden]
            h[:, t] = h_prev
            self.steps += 1
        self.x, self.h0, self.h = x, h0, h
        return h

    def backward(self, dh):
        """dh [B, T, d_hidden] -> dx [B, T, d_in] (and dh0 [B, d_hidden] when forward was given h0)."""
        x, h = self.x, self.h
        B, T, _ = h.shape
        da = xp.empty_like(h)                                                          # [B, T, d_hidden]
        dnext = xp.zeros((B, self.d_hidden), dtype=h.dtype)                            # from step t + 1
        for t in reversed(range(T)):
            da[:, t] = (dh[:, t] + dnext) * (1 - h[:, t] ** 2)                         # through tanh
            h_prev = h[:, t - 1] if t > 0 else self.h0                                 # [B, d_hidden]
            self.W_hh.grad += h_prev.T @ da[:, t]                                      # [d_h, B] @ [B, d_h]
            dnext = da[:, t] @ self.W_hh.data.T                                        # [B, d_hidden]
        da2 = da.reshape(-1, self.d_hidden)                                            # [B·T, d_hidden]
        self.W_xh.grad += x.reshape(-1, self.d_in).T @ da2                            # [d_in, d_hidden]
        self.bias.grad += da2.sum(axis=0)                                              # [d_hidden]
        dx = (da2 @ self.W_xh.data.T).reshape(x.shape)                                 # [B, T, d_in]
        return (dx, dnext) if self.h0_given else dx
