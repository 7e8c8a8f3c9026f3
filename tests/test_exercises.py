"""The exercises of lessons/exercises/, graded by the lessons' own checks (``--exercise``).

For every exercise: the stub, still empty, stops its lesson with one friendly line and no traceback; a
correct solution passes its lesson (tests/test_lessons.py runs every lesson that has exercises on these
correct solutions); a deliberately wrong one is caught by the lesson, by the check meant to catch it.
Correct solutions are built here from the library (they never live in lessons/): each is written into a
temporary exercises folder that LESSON_EXERCISES_DIR points the lessons to.
"""
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tinytransformer.layers.attention import causal_mask
from tinytransformer.machine import THREAD_VARIABLES, usable_cores

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
STUBS = LESSONS / "exercises"
NOT_WRITTEN = 3  # lessons/_exercises.py: exit status of a lesson stopped by a stub

# Each exercise and its lesson, in the order that lesson asks for them.
EXERCISES = {
    "embedding_backward": "02_embeddings.py",
    "rnn_backward": "03_recurrent_networks.py",
    "attention_forward": "05_attention_by_hand.py",
    "causal_mask": "07_masks.py",
    "masked_softmax": "07_masks.py",
    "split_heads": "08_multi_head.py",
    "merge_heads": "08_multi_head.py",
    "layernorm_forward": "10_residuals_and_layernorm.py",
    "linear_backward": "11_backprop_by_hand.py",
    "layernorm_backward": "11_backprop_by_hand.py",
    "attention_backward": "11_backprop_by_hand.py",
    "multi_head_backward": "11_backprop_by_hand.py",
    "gelu_derivative": "11_backprop_by_hand.py",
    "cross_entropy_backward": "11_backprop_by_hand.py",
    "gpt_forward": "12_assemble_gpt.py",
    "adamw_step": "16_train_gpt.py",
    "training_iteration": "16_train_gpt.py",
    "sample_next": "17_sampling.py",
    "kv_cache_step": "17_sampling.py",
    "bpe_merge_loop": "23_subword_tokens.py",
    "rope_backward": "24_rotary_positions.py",
    "gqa_backward": "26_grouped_query_attention.py",
}


def library_method(name, module, cls, method):
    """A correct solution that is the library's method (taken when the lesson imports the file, which is
    before the lesson puts the exercise in the method's place)."""
    return f"""
        from {module} import {cls}
        _library = {cls}.{method}

        def {name}(self, *args, **kwargs):
            return _library(self, *args, **kwargs)
        """


CORRECT = {
    "gqa_backward": library_method("gqa_backward", "tinytransformer.layers.attention", "MultiHeadAttention",
                                   "sum_kv"),
    "embedding_backward": library_method("embedding_backward", "tinytransformer.layers.embedding", "Embedding",
                                         "backward"),
    "rnn_backward": library_method("rnn_backward", "tinytransformer.layers.rnn", "RNN", "backward"),
    "attention_forward": library_method("attention_forward", "tinytransformer.layers.attention",
                                        "ScaledDotProductAttention", "forward"),
    "causal_mask": """
        from tinytransformer.layers.attention import causal_mask as _library

        def causal_mask(length):
            return _library(length)
        """,
    "masked_softmax": """
        from tinytransformer.layers.attention import masked_softmax as _library

        def masked_softmax(scores, mask=None):
            return _library(scores, mask)
        """,
    "split_heads": library_method("split_heads", "tinytransformer.layers.attention", "MultiHeadAttention",
                                  "split_heads"),
    "merge_heads": library_method("merge_heads", "tinytransformer.layers.attention", "MultiHeadAttention",
                                  "merge_heads"),
    "layernorm_forward": library_method("layernorm_forward", "tinytransformer.layers.layernorm", "LayerNorm",
                                        "forward"),
    "linear_backward": library_method("linear_backward", "tinytransformer.layers.linear", "Linear", "backward"),
    "layernorm_backward": library_method("layernorm_backward", "tinytransformer.layers.layernorm", "LayerNorm",
                                         "backward"),
    "attention_backward": library_method("attention_backward", "tinytransformer.layers.attention",
                                         "ScaledDotProductAttention", "backward"),
    "multi_head_backward": library_method("multi_head_backward", "tinytransformer.layers.attention",
                                          "MultiHeadAttention", "backward"),
    "kv_cache_step": library_method("kv_cache_step", "tinytransformer.layers.attention", "MultiHeadAttention",
                                    "_forward_cached"),
    "gelu_derivative": library_method("gelu_derivative", "tinytransformer.layers.activations", "GELU",
                                      "derivative"),
    "rope_backward": library_method("rope_backward", "tinytransformer.layers.rotary", "RotaryEmbedding",
                                    "backward"),
    "cross_entropy_backward": library_method("cross_entropy_backward", "tinytransformer.layers.loss",
                                             "CrossEntropyLoss", "backward"),
    "adamw_step": """
        from tinytransformer.optim import AdamW
        _library = AdamW.step

        def adamw_step(self, lr=None):
            return _library(self, lr)
        """,
    "training_iteration": """
        from tinytransformer.optim import clip_grad_norm, cosine_lr

        def training_iteration(model, optimizer, x, y, it, cfg):
            model.zero_grad()
            _, loss = model(x, y)
            model.backward()
            clip_grad_norm(model.parameters(), cfg.grad_clip)
            optimizer.step(cosine_lr(it, lr=cfg.lr, min_lr=cfg.min_lr, warmup_iters=cfg.warmup_iters,
                                     lr_decay_iters=cfg.lr_decay_iters))
            return float(loss)
        """,
    "sample_next": """
        from tinytransformer.generate import next_token_probs, sample

        def sample_next(logits, temperature, top_k, rng):
            return sample(next_token_probs(logits, temperature, top_k), rng)
        """,
    "bpe_merge_loop": """
        from tinytransformer.tokenizers.bpe_merge import bpe_merge

        def bpe_merge_loop(token, ranks):
            return bpe_merge(token, ranks)
        """,
    "gpt_forward": """
        from tinytransformer import causal_mask

        def gpt_forward(self, idx):
            x = self.wpe(self.wte(idx))
            if self.drop is not None:
                x = self.drop(x)
            mask = causal_mask(idx.shape[1])
            for block in self.blocks:
                x = block(x, mask=mask)
            h = self.ln_f(x)
            return self.lm_head(h) if self.lm_head is not None else h @ self.wte.weight.data.T
        """,
}

# Plausible wrong solutions: (exercise, what is wrong, its source, the words of the check that must stop it).
HEADS = "with 3 heads of d_k = 4 over 5 positions every head's gradient goes back to its own columns"
ITERATIONS = "six training iterations give the library's loop's weights and losses to 1e-12"


def broken(source: str, *changes) -> str:
    """``source`` with each (right, wrong) change made once: a likely mistake, the rest as written, so that
    a wrong solution shows exactly where it differs from a right one."""
    source = textwrap.dedent(source)
    for right, wrong in changes:
        assert source.count(right) == 1, f"{right!r} is not in the source exactly once"
        source = source.replace(right, wrong)
    return source


# Right solutions written out, for the wrong ones below to differ from by a line or two.
RNN_BACKWARD = """
    import numpy as np

    def rnn_backward(self, dh):
        B, T, _ = self.h.shape
        da = np.empty_like(self.h)
        dnext = np.zeros((B, self.d_hidden))
        for t in reversed(range(T)):
            da[:, t] = (dh[:, t] + dnext) * (1 - self.h[:, t] ** 2)
            h_prev = self.h[:, t - 1] if t > 0 else self.h0
            self.W_hh.grad += h_prev.T @ da[:, t]
            dnext = da[:, t] @ self.W_hh.data.T
        da2 = da.reshape(-1, self.d_hidden)
        self.W_xh.grad += self.x.reshape(-1, self.d_in).T @ da2
        self.bias.grad += da2.sum(axis=0)
        dx = (da2 @ self.W_xh.data.T).reshape(self.x.shape)
        return (dx, dnext) if self.h0_given else dx
    """
MULTI_HEAD_BACKWARD = """
    def multi_head_backward(self, dy):
        B, T, _ = dy.shape
        dheads = self.out_proj.backward(dy).reshape(B, T, self.n_head, self.d_k).transpose(0, 2, 1, 3)
        dq, dk, dv = self.attention.backward(dheads)
        if self.fused:
            return self._project_qkv_backward(dq, dk, dv)

        def merge(g):
            return g.transpose(0, 2, 1, 3).reshape(g.shape[0], g.shape[2], self.d_model)

        dx = self.q_proj.backward(merge(dq))
        dc = self.k_proj.backward(merge(dk)) + self.v_proj.backward(merge(dv))
        return (dx, dc) if self.cross else dx + dc
    """
TRAINING_ITERATION = """
    from tinytransformer.optim import clip_grad_norm, cosine_lr

    def training_iteration(model, optimizer, x, y, it, cfg):
        model.zero_grad()
        _, loss = model(x, y)
        model.backward()
        clip_grad_norm(model.parameters(), cfg.grad_clip)
        optimizer.step(cosine_lr(it, lr=cfg.lr, min_lr=cfg.min_lr, warmup_iters=cfg.warmup_iters,
                                 lr_decay_iters=cfg.lr_decay_iters))
        return float(loss)
    """
WRONG = [
    ("embedding_backward", "fancy-index += loses repeated tokens", """
        def embedding_backward(self, dy):
            self.weight.grad[self.idx.reshape(-1)] += dy.reshape(-1, dy.shape[-1])
        """, "dW equals the sum over positions computed by hand"),
    ("embedding_backward", "grad = ... instead of grad += ...: a second backward overwrites the first", """
        import numpy as np

        def embedding_backward(self, dy):
            grad = np.zeros_like(self.weight.grad)
            np.add.at(grad, self.idx.reshape(-1), dy.reshape(-1, dy.shape[-1]))
            self.weight.grad[...] = grad
        """, "two backwards in a row add up: twice the batch gradient"),
    ("rnn_backward", "no tanh' factor (1 − h²)",
     broken(RNN_BACKWARD, ("(dh[:, t] + dnext) * (1 - self.h[:, t] ** 2)", "dh[:, t] + dnext")),
     "the backward through time matches finite differences"),
    ("rnn_backward", "truncated: dh of step t is not carried to step t − 1",
     broken(RNN_BACKWARD, ("(dh[:, t] + dnext) * (1", "dh[:, t] * (1")),
     "the backward through time matches finite differences"),
    ("rnn_backward", "W_hh.grad = ... inside the loop: only step 0's share is left",
     broken(RNN_BACKWARD, ("self.W_hh.grad += h_prev.T", "self.W_hh.grad = h_prev.T")),
     "the backward through time matches finite differences"),
    ("rnn_backward", "grad = ... instead of grad += ...: a second backward overwrites the first",
     broken(RNN_BACKWARD, ("self.W_xh.grad += ", "self.W_xh.grad = "), ("self.bias.grad += ", "self.bias.grad = ")),
     "two backwards in a row add up"),
    ("rnn_backward", "dh0 taken before the product with W_hhᵀ",
     broken(RNN_BACKWARD, ("return (dx, dnext)", "return (dx, da[:, 0])")),
     "and with a starting state h0 given, dh0 too"),
    ("attention_forward", "no 1/sqrt(d_k)", """
        import numpy as np
        from tinytransformer import masked_softmax

        def attention_forward(self, q, k, v, mask=None):
            self.weights = masked_softmax(q @ np.swapaxes(k, -1, -2), mask)
            return self.weights @ v
        """, "our weights equal the library's attention.weights"),
    ("attention_forward", "ignores the mask", """
        import math
        import numpy as np
        from tinytransformer import masked_softmax

        def attention_forward(self, q, k, v, mask=None):
            self.weights = masked_softmax(q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1]))
            return self.weights @ v
        """, "removed edges get weight exactly 0"),
    ("causal_mask", "off by one: the diagonal is masked too", """
        import numpy as np

        def causal_mask(length):
            return np.tril(np.ones((length, length), dtype=bool), k=-1)
        """, "mask[i, j] is True exactly when j <= i"),
    ("causal_mask", "0/1 floats instead of booleans", """
        import numpy as np

        def causal_mask(length):
            return np.tri(length)
        """, "the mask is boolean"),
    ("masked_softmax", "no max shift: exp overflows on large scores", """
        import numpy as np

        def masked_softmax(scores, mask=None):
            if mask is not None:
                scores = np.where(mask, scores, -np.inf)
            e = np.exp(scores)
            total = e.sum(axis=-1, keepdims=True)
            return e / np.where(total == 0, 1.0, total)
        """, "scores in the thousands give no inf or NaN"),
    ("masked_softmax", "a fully masked row gives NaN", """
        import numpy as np

        def masked_softmax(scores, mask=None):
            if mask is not None:
                scores = np.where(mask, scores, -np.inf)
            e = np.exp(scores - scores.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        """, "masked_softmax on its own: fully masked rows are all zeros"),
    ("split_heads", "reshape to [B, n_head, T, d_k] without the transpose", """
        def split_heads(self, x):
            B, T, _ = x.shape
            return x.reshape(B, self.n_head, T, self.d_k)
        """, "head h of the split is columns"),
    ("merge_heads", "heads merged in the wrong order (features interleaved)", """
        def merge_heads(self, x):
            B, _, T, _ = x.shape
            return x.transpose(0, 2, 3, 1).reshape(B, T, self.d_model)
        """, "merge_heads(split_heads(Q)) == Q exactly"),
    ("layernorm_forward", "forgets γ and β", """
        import numpy as np

        def layernorm_forward(self, x):
            mean = x.mean(axis=-1, keepdims=True)
            var = x.var(axis=-1, keepdims=True)
            self.rstd = 1.0 / np.sqrt(var + self.eps)
            self.xhat = (x - mean) * self.rstd
            return self.xhat
        """, "with γ and β set, the output is γ ⊙ x̂ + β"),
    ("layernorm_forward", "variance divided by D - 1", """
        import numpy as np

        def layernorm_forward(self, x):
            mean = x.mean(axis=-1, keepdims=True)
            var = x.var(axis=-1, keepdims=True, ddof=1)
            self.rstd = 1.0 / np.sqrt(var + self.eps)
            self.xhat = (x - mean) * self.rstd
            y = self.xhat * self.weight.data
            return y + self.bias.data if self.bias is not None else y
        """, "every output row has variance 1"),
    ("linear_backward", "dx = dy W: the transpose missing (shapes fit only on a square W)", """
        def linear_backward(self, dy):
            x2 = self.x.reshape(-1, self.in_features)
            dy2 = dy.reshape(-1, self.out_features)
            self.weight.grad += x2.T @ dy2
            if self.bias is not None:
                self.bias.grad += dy2.sum(axis=0)
            return (dy2 @ self.weight.data).reshape(self.x.shape)
        """, "on a square W (4 → 4) Linear's backward matches finite differences"),
    ("linear_backward", "grad = ... instead of grad += ...: a second backward overwrites the first", """
        def linear_backward(self, dy):
            x2 = self.x.reshape(-1, self.in_features)
            dy2 = dy.reshape(-1, self.out_features)
            self.weight.grad = x2.T @ dy2
            if self.bias is not None:
                self.bias.grad = dy2.sum(axis=0)
            return (dy2 @ self.weight.data.T).reshape(self.x.shape)
        """, "two backwards in a row add up"),
    ("linear_backward", "grad[...] = ... (in place, but still an assignment)", """
        def linear_backward(self, dy):
            x2 = self.x.reshape(-1, self.in_features)
            dy2 = dy.reshape(-1, self.out_features)
            self.weight.grad[...] = x2.T @ dy2
            if self.bias is not None:
                self.bias.grad[...] = dy2.sum(axis=0)
            return (dy2 @ self.weight.data.T).reshape(self.x.shape)
        """, "two backwards in a row add up"),
    ("layernorm_backward", "misses the term through σ", """
        def layernorm_backward(self, dy):
            rows = tuple(range(dy.ndim - 1))
            self.weight.grad += (dy * self.xhat).sum(axis=rows)
            self.bias.grad += dy.sum(axis=rows)
            g = dy * self.weight.data
            return self.rstd * (g - g.mean(axis=-1, keepdims=True))
        """, "LayerNorm's backward matches finite differences"),
    ("layernorm_backward", "grad = ... instead of grad += ...: a second backward overwrites the first", """
        def layernorm_backward(self, dy):
            rows = tuple(range(dy.ndim - 1))
            self.weight.grad = (dy * self.xhat).sum(axis=rows)
            self.bias.grad = dy.sum(axis=rows)
            g = dy * self.weight.data
            return self.rstd * (g - g.mean(axis=-1, keepdims=True) - self.xhat * (g * self.xhat).mean(
                axis=-1, keepdims=True))
        """, "two backwards in a row add up: dγ and dβ are the sums"),
    ("attention_backward", "forgets the 1/sqrt(d_k) on dq and dk", """
        import numpy as np

        def attention_backward(self, dout):
            w = self.weights
            dv = np.swapaxes(w, -1, -2) @ dout
            dw = dout @ np.swapaxes(self.v, -1, -2)
            ds = w * (dw - (dw * w).sum(axis=-1, keepdims=True))
            return ds @ self.k, np.swapaxes(ds, -1, -2) @ self.q, dv
        """, "scaled dot-product attention's backward matches"),
    ("attention_backward", "softmax backward without the row sum: ds = w ⊙ dw", """
        import math
        import numpy as np

        def attention_backward(self, dout):
            w = self.weights
            dv = np.swapaxes(w, -1, -2) @ dout
            ds = w * (dout @ np.swapaxes(self.v, -1, -2)) / math.sqrt(self.q.shape[-1])
            return ds @ self.k, np.swapaxes(ds, -1, -2) @ self.q, dv
        """, "scaled dot-product attention's backward matches"),
    ("attention_backward", "recomputes the weights in the backward, without the mask", """
        import math
        import numpy as np

        def attention_backward(self, dout):
            s = self.q @ np.swapaxes(self.k, -1, -2) / math.sqrt(self.q.shape[-1])
            w = np.exp(s - s.max(axis=-1, keepdims=True))
            w /= w.sum(axis=-1, keepdims=True)
            dv = np.swapaxes(w, -1, -2) @ dout
            dw = dout @ np.swapaxes(self.v, -1, -2)
            ds = w * (dw - (dw * w).sum(axis=-1, keepdims=True)) / math.sqrt(self.q.shape[-1])
            return ds @ self.k, np.swapaxes(ds, -1, -2) @ self.q, dv
        """, "keys masked for every query (padding) get dK and dV exactly 0"),
    ("gelu_derivative", "the derivative of ReLU", """
        def gelu_derivative(self, x, s):
            return (x > 0) * 1.0
        """, "GELU's backward matches finite differences"),
    ("gelu_derivative", "the chain rule through σ(u), not σ(2u)", """
        import math

        def gelu_derivative(self, x, s):
            du_dx = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
            return s + x * s * (1 - s) * du_dx
        """, "GELU's backward matches finite differences"),
    ("cross_entropy_backward", "no 1/N", """
        def cross_entropy_backward(self, dloss=1.0):
            dz = self.probs.copy()
            dz[self.rows, self.targets] -= 1.0
            return (dz * dloss).reshape(self.shape)
        """, "dz = (softmax(z) − onehot(y)) / N"),
    ("cross_entropy_backward", "divides by every row, ignored targets included", """
        def cross_entropy_backward(self, dloss=1.0):
            dz = self.probs.copy()
            dz[self.rows, self.targets] -= 1.0
            return (dz * dloss / len(self.rows)).reshape(self.shape)
        """, "... and with ignored targets"),
    ("gpt_forward", "no causal mask: each position sees the future", """
        def gpt_forward(self, idx):
            x = self.wpe(self.wte(idx))
            for block in self.blocks:
                x = block(x)
            h = self.ln_f(x)
            return self.lm_head(h) if self.lm_head is not None else h @ self.wte.weight.data.T
        """, "gpt_forward gives GPT's logits to 1e-12 on a tied, pre-norm model"),
    ("gpt_forward", "no final LayerNorm", """
        from tinytransformer import causal_mask

        def gpt_forward(self, idx):
            x = self.wpe(self.wte(idx))
            mask = causal_mask(idx.shape[1])
            for block in self.blocks:
                x = block(x, mask=mask)
            return self.lm_head(x) if self.lm_head is not None else x @ self.wte.weight.data.T
        """, "gpt_forward gives GPT's logits to 1e-12 on a tied, pre-norm model"),
    ("gpt_forward", "always the tied output layer, even when the model has its own", """
        from tinytransformer import causal_mask

        def gpt_forward(self, idx):
            x = self.wpe(self.wte(idx))
            mask = causal_mask(idx.shape[1])
            for block in self.blocks:
                x = block(x, mask=mask)
            return self.ln_f(x) @ self.wte.weight.data.T
        """, "... and on an untied, post-norm model with sinusoidal positions"),
    ("adamw_step", "no bias correction", """
        import numpy as np

        def adamw_step(self, lr=None):
            if lr is not None:
                self.lr = float(lr)
            beta1, beta2 = self.betas
            self.step_count += 1
            t = self.step_count
            for name, p in self.params.items():
                g = p.grad
                m, v = self.m[name], self.v[name]
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                if self.decays(name):
                    p.data *= 1 - self.lr * self.weight_decay
                m_hat, v_hat = m, v
                p.data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        """, "bias correction: the first step moves every coordinate by lr"),
    ("adamw_step", "L2: wd·θ added to the gradient instead of decoupled decay", """
        import numpy as np

        def adamw_step(self, lr=None):
            if lr is not None:
                self.lr = float(lr)
            beta1, beta2 = self.betas
            self.step_count += 1
            t = self.step_count
            for name, p in self.params.items():
                g = p.grad + self.weight_decay * p.data if self.decays(name) else p.grad
                m, v = self.m[name], self.v[name]
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
                p.data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        """, "decoupled decay: with g = 0 a matrix shrinks by exactly lr·wd·θ"),
    ("multi_head_backward", "heads taken as [B, T, d_k, n_head]: a head's columns interleaved with the others'",
     broken(MULTI_HEAD_BACKWARD, ("reshape(B, T, self.n_head, self.d_k).transpose(0, 2, 1, 3)",
                                  "reshape(B, T, self.d_k, self.n_head).transpose(0, 3, 1, 2)"),
            ("g.transpose(0, 2, 1, 3)", "g.transpose(0, 2, 3, 1)")), HEADS),
    ("multi_head_backward", "dq, dk, dv merged by a reshape alone: the head axis is not moved back",
     broken(MULTI_HEAD_BACKWARD, ("g.transpose(0, 2, 1, 3).reshape", "g.reshape")), HEADS),
    ("multi_head_backward", "self-attention's dx from Q only: the paths through K and V are dropped",
     broken(MULTI_HEAD_BACKWARD, ("else dx + dc", "else dx")), HEADS),
    ("training_iteration", "no zero_grad: each iteration's gradients add to the last ones",
     broken(TRAINING_ITERATION, ("    model.zero_grad()\n", "")), ITERATIONS),
    ("training_iteration", "clips after the step: the update uses the unclipped gradients",
     broken(TRAINING_ITERATION, ("    clip_grad_norm(model.parameters(), cfg.grad_clip)\n", ""),
            ("    return float(loss)", "    clip_grad_norm(model.parameters(), cfg.grad_clip)\n    return float(loss)")),
     ITERATIONS),
    ("training_iteration", "the peak lr at every iteration: no schedule",
     broken(TRAINING_ITERATION, ("clip_grad_norm, cosine_lr", "clip_grad_norm"),
            ("cosine_lr(it, lr=cfg.lr, min_lr=cfg.min_lr, warmup_iters=cfg.warmup_iters,\n"
             "                             lr_decay_iters=cfg.lr_decay_iters)", "cfg.lr")), ITERATIONS),
    ("sample_next", "temperature after the softmax: p ** (1/T), not renormalised", """
        import numpy as np

        def sample_next(logits, temperature, top_k, rng):
            z = logits - logits.max(axis=-1, keepdims=True)
            if top_k is not None:
                kth = np.sort(z, axis=-1)[:, -top_k][:, None]
                z = np.where(z >= kth, z, -np.inf)
            p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
            p = p ** (1.0 / temperature)
            u = rng.random((len(p), 1))
            return np.minimum((p.cumsum(axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)
        """, "T = 0.001 gives the argmax in every row"),
    ("sample_next", "temperature multiplies the probabilities (renormalised: T has no effect)", """
        import numpy as np

        def sample_next(logits, temperature, top_k, rng):
            z = logits - logits.max(axis=-1, keepdims=True)
            if top_k is not None:
                kth = np.sort(z, axis=-1)[:, -top_k][:, None]
                z = np.where(z >= kth, z, -np.inf)
            p = np.exp(z) * temperature
            p /= p.sum(axis=-1, keepdims=True)
            return np.array([rng.choice(len(row), p=row) for row in p])
        """, "T = 0.001 gives the argmax in every row"),
    ("sample_next", "no max shift: exp(z/T) overflows at small T", """
        import numpy as np

        def sample_next(logits, temperature, top_k, rng):
            z = logits / temperature
            if top_k is not None:
                kth = np.sort(z, axis=-1)[:, -top_k][:, None]
                z = np.where(z >= kth, z, -np.inf)
            with np.errstate(over="ignore", invalid="ignore"):
                p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
            u = rng.random((len(p), 1))
            return np.minimum((p.cumsum(axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)
        """, "T = 0.001 gives the argmax in every row"),
    ("sample_next", "top-k keeps the k smallest logits", """
        import numpy as np

        def sample_next(logits, temperature, top_k, rng):
            z = (logits - logits.max(axis=-1, keepdims=True)) / temperature
            if top_k is not None:
                kth = np.sort(z, axis=-1)[:, top_k - 1][:, None]
                z = np.where(z <= kth, z, -np.inf)
            p = np.exp(z - z.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            return np.array([rng.choice(len(row), p=row) for row in p])
        """, "top_k = 1 gives the argmax in every row"),
    ("sample_next", "top-k masks the other logits with 0 instead of −inf", """
        import numpy as np

        def sample_next(logits, temperature, top_k, rng):
            z = (logits - logits.max(axis=-1, keepdims=True)) / temperature
            if top_k is not None:
                kth = np.sort(z, axis=-1)[:, -top_k][:, None]
                z = np.where(z >= kth, z, 0.0)
            p = np.exp(z - z.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            return np.array([rng.choice(len(row), p=row) for row in p])
        """, "top_k = 1 gives the argmax in every row"),
    ("sample_next", "top-k draws uniformly among the k kept, ignoring their probabilities", """
        import numpy as np

        def sample_next(logits, temperature, top_k, rng):
            z = (logits - logits.max(axis=-1, keepdims=True)) / temperature
            p = np.exp(z)
            if top_k is not None:
                kth = np.sort(z, axis=-1)[:, -top_k][:, None]
                p = (z >= kth).astype(float)
            p /= p.sum(axis=-1, keepdims=True)
            u = rng.random((len(p), 1))
            return np.minimum((p.cumsum(axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)
        """, "the frequencies match softmax(z/T) on the top k"),
    ("sample_next", "draws from NumPy's global generator, not the one passed in", """
        import numpy as np

        def sample_next(logits, temperature, top_k, rng):
            z = (logits - logits.max(axis=-1, keepdims=True)) / temperature
            if top_k is not None:
                kth = np.sort(z, axis=-1)[:, -top_k][:, None]
                z = np.where(z >= kth, z, -np.inf)
            p = np.exp(z)
            p /= p.sum(axis=-1, keepdims=True)
            u = np.random.random((len(p), 1))
            return np.minimum((p.cumsum(axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)
        """, "the draws come from the generator passed in"),
    ("kv_cache_step", "the new position attends to the cached ones only, not to its own key and value", """
        import numpy as np
        from tinytransformer import causal_mask

        def kv_cache_step(self, x, cache):
            q = self.split_heads(self.q_proj(x))
            k = self.split_heads(self.k_proj(x))
            v = self.split_heads(self.v_proj(x))
            if cache.get("k") is None:
                heads = self.attention(q, k, v, causal_mask(x.shape[1]))
                cache["k"], cache["v"] = k, v
            else:
                heads = self.attention(q, cache["k"], cache["v"])
                cache["k"] = np.concatenate([cache["k"], k], axis=2)
                cache["v"] = np.concatenate([cache["v"], v], axis=2)
            return self.out_proj(self.merge_heads(heads))
        """, "greedy in float64: generating with the cache gives exactly the tokens of the uncached path"),
    ("kv_cache_step", "appends along the head axis (1), not the time axis (2)", """
        import numpy as np
        from tinytransformer import causal_mask

        def kv_cache_step(self, x, cache):
            q = self.split_heads(self.q_proj(x))
            k = self.split_heads(self.k_proj(x))
            v = self.split_heads(self.v_proj(x))
            past = 0 if cache.get("k") is None else cache["k"].shape[2]
            if past:
                k = np.concatenate([cache["k"], k], axis=1)
                v = np.concatenate([cache["v"], v], axis=1)
            cache["k"], cache["v"] = k, v
            heads = self.attention(q, k, v, causal_mask(x.shape[1], past))
            return self.out_proj(self.merge_heads(heads))
        """, "the cache grows by one position per step along the time axis"),
    ("bpe_merge_loop", "merges the leftmost pair that is a token, not the one of lowest rank", """
        def bpe_merge_loop(token, ranks):
            parts = [token[i:i + 1] for i in range(len(token))]
            while True:
                for i in range(len(parts) - 1):
                    if parts[i] + parts[i + 1] in ranks:
                        parts[i:i + 2] = [parts[i] + parts[i + 1]]
                        break
                else:
                    return parts
        """, "the pair of lowest rank merges first, wherever it is"),
    ("bpe_merge_loop", "merges every place of the best pair at once, right to left", """
        def bpe_merge_loop(token, ranks):
            parts = [token[i:i + 1] for i in range(len(token))]
            while True:
                found = [(ranks[parts[i] + parts[i + 1]], i) for i in range(len(parts) - 1)
                         if parts[i] + parts[i + 1] in ranks]
                if not found:
                    return parts
                best = min(found)[0]
                i = len(parts) - 2
                while i >= 0:
                    if ranks.get(parts[i] + parts[i + 1]) == best:
                        parts[i:i + 2] = [parts[i] + parts[i + 1]]
                    i -= 1
        """, "ties go to the leftmost pair"),
    ("bpe_merge_loop", "ties go to the rightmost pair (<= in the search for the lowest rank)", """
        def bpe_merge_loop(token, ranks):
            parts = [token[i:i + 1] for i in range(len(token))]
            while True:
                best, best_rank = None, None
                for i in range(len(parts) - 1):
                    rank = ranks.get(parts[i] + parts[i + 1])
                    if rank is not None and (best_rank is None or rank <= best_rank):
                        best, best_rank = i, rank
                if best is None:
                    return parts
                parts[best:best + 2] = [parts[best] + parts[best + 1]]
        """, "ties go to the leftmost pair"),
    ("bpe_merge_loop", "one merge only: the loop stops after the first", """
        def bpe_merge_loop(token, ranks):
            parts = [token[i:i + 1] for i in range(len(token))]
            found = [(ranks[parts[i] + parts[i + 1]], i) for i in range(len(parts) - 1)
                     if parts[i] + parts[i + 1] in ranks]
            if found:
                i = min(found)[1]
                parts[i:i + 2] = [parts[i] + parts[i + 1]]
            return parts
        """, "ties go to the leftmost pair"),
    ("rope_backward", "rotates forward again: + instead of − (the forward's rotation, not its inverse)", """
        from tinytransformer.layers.rotary import rotate_half

        def rope_backward(self, dy):
            return dy * self.cos + rotate_half(dy * self.sin)
        """, "RotaryEmbedding's backward matches finite differences"),
    ("rope_backward", "recomputes the angles from position 0, ignoring the offset of the forward", """
        from tinytransformer.layers.rotary import rope_angles, rotate_half

        def rope_backward(self, dy):
            cos, sin = rope_angles(dy.shape[-2], self.d_k, self.theta)
            return dy * cos - rotate_half(dy * sin)
        """, "RotaryEmbedding's backward matches finite differences"),
    ("gqa_backward", "one head of the group instead of the sum of its heads", """
        def gqa_backward(self, grad):
            return grad[:, ::self.groups]
        """, "the GQA layer's backward matches finite differences"),
    ("gqa_backward", "the mean of the group instead of the sum", """
        def gqa_backward(self, grad):
            B, _, T, d_k = grad.shape
            return grad.reshape(B, self.n_kv_head, self.groups, T, d_k).mean(axis=2)
        """, "the GQA layer's backward matches finite differences"),
    ("gqa_backward", "the wrong grouping: heads j, j + n_kv, ... instead of consecutive ones", """
        def gqa_backward(self, grad):
            B, _, T, d_k = grad.shape
            return grad.reshape(B, self.groups, self.n_kv_head, T, d_k).sum(axis=1)
        """, "the GQA layer's backward matches finite differences"),
    ("gqa_backward", "= instead of += in a loop over the heads: only the group's last head is kept", """
        import numpy as np

        def gqa_backward(self, grad):
            B, H, T, d_k = grad.shape
            out = np.zeros((B, self.n_kv_head, T, d_k), dtype=grad.dtype)
            for h in range(H):
                out[:, h // self.groups] = grad[:, h]
            return out
        """, "the GQA layer's backward matches finite differences"),
]


def write_solutions(folder: Path, wanted: dict) -> Path:
    """An exercises folder: the stubs, with the exercises in ``wanted`` replaced by the given sources."""
    folder.mkdir(parents=True, exist_ok=True)
    for stub in STUBS.glob("*.py"):
        (folder / stub.name).write_text(stub.read_text())
    for name, source in wanted.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return folder


def one_blas_thread_env() -> dict:
    """This process's environment with BLAS on one thread: for a lesson that runs beside another process,
    so that the two do not take turns on the same cores."""
    return {**os.environ, **{name: "1" for name in THREAD_VARIABLES}}


def run_lesson(lesson: str, out: Path, exercises_dir: Path | None = None):
    """The lesson as a learner runs it with --exercise, on one BLAS thread: (the process, its output)."""
    env = one_blas_thread_env()
    env.pop("LESSON_EXERCISES_DIR", None)
    if exercises_dir is not None:
        env["LESSON_EXERCISES_DIR"] = str(exercises_dir)
    result = subprocess.run([sys.executable, str(LESSONS / lesson), "--exercise", "--no-pause", "--quick",
                             "--out", str(out)], capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
    return result, result.stdout + result.stderr


def earlier_in_lesson(name: str) -> list:
    lesson = EXERCISES[name]
    names = [n for n, les in EXERCISES.items() if les == lesson]
    return names[:names.index(name)]


def test_every_exercise_has_a_stub_and_a_line_in_the_readme():
    readme = (STUBS / "README.md").read_text()
    for name in EXERCISES:
        source = (STUBS / f"{name}.py").read_text()
        assert f"def {name}(" in source and "# TODO" in source and "raise NotImplementedError" in source
        assert f"`{name}.py`" in readme
    for name, lesson in EXERCISES.items():
        assert f'lesson.exercise("{name}"' in (LESSONS / lesson).read_text(), f"{lesson} does not ask for {name}"


# --- a lesson run per test, started ahead: one per core ------------------------------------------------
# Each test below checks one run of a lesson, a process of its own: about eighty runs of one to three
# seconds. One after another they would keep one core busy and leave the rest idle. So the first of these
# tests to run sets up the runs of all that pytest selected, and starts them in the tests' order, as many
# at a time as there are cores (each on one BLAS thread); each test then waits for its own run.

def empty_stub_run(tmp: Path, name: str):
    """The stub of `name` in its lesson, the exercises the lesson asks for before it solved (the lesson
    reaches the stub only then): (lesson, exercises folder, the stub's path as the lesson names it)."""
    earlier = earlier_in_lesson(name)
    if not earlier:   # the real stubs in lessons/exercises/, as a learner runs them
        return EXERCISES[name], None, f"lessons/exercises/{name}.py"
    folder = write_solutions(tmp / "exercises", {n: CORRECT[n] for n in earlier})
    return EXERCISES[name], folder, str(folder / f"{name}.py")


def wrong_solution_run(tmp: Path, name: str, source: str, **_):
    """The wrong `source` for `name` in its lesson, every other exercise of the lesson solved (the test's
    other parameters, which say what is wrong and what catches it, are the test's own)."""
    lesson = EXERCISES[name]
    others = {n: CORRECT[n] for n, les in EXERCISES.items() if les == lesson and n != name}
    return lesson, write_solutions(tmp / "exercises", {**others, name: source}), None


# the tests that read a run, and how each sets its run up from the test's parameters
RUNS = {"test_an_empty_stub_stops_its_lesson_with_one_friendly_line": empty_stub_run,
        "test_a_wrong_solution_is_caught_by_its_lesson": wrong_solution_run}


@pytest.fixture(scope="module")
def lesson_runs(request, tmp_path_factory):
    """{test id: (a future of run_lesson's (process, output), the stub's path or None)} for the selected
    tests of this module that RUNS names, set up from each test's parameters."""
    runs = {}
    pool = ThreadPoolExecutor(max_workers=usable_cores())
    try:
        for item in request.session.items:
            set_up = RUNS.get(getattr(item, "originalname", None))
            if set_up is not None and item.module is request.module:
                tmp = tmp_path_factory.mktemp("lesson")
                lesson, folder, shown = set_up(tmp, **item.callspec.params)
                runs[item.nodeid] = pool.submit(run_lesson, lesson, tmp, folder), shown
        yield runs
    finally:
        pool.shutdown(cancel_futures=True)   # a stopped session leaves no run behind it


@pytest.mark.parametrize("name", EXERCISES)
def test_an_empty_stub_stops_its_lesson_with_one_friendly_line(name, lesson_runs, request):
    run, shown = lesson_runs[request.node.nodeid]
    result, output = run.result()
    assert result.returncode == NOT_WRITTEN, output[-3000:]
    assert (f"Exercise {name!r} is not written yet: open {shown}, replace the `raise NotImplementedError` "
            "with your code, and run this lesson again with --exercise.") in result.stdout
    assert "Traceback" not in output and "CHECK FAILED" not in output


@pytest.mark.parametrize("name, wrong, source, caught_by", WRONG, ids=[f"{w[0]}: {w[1]}" for w in WRONG])
def test_a_wrong_solution_is_caught_by_its_lesson(name, wrong, source, caught_by, lesson_runs, request):
    run, _ = lesson_runs[request.node.nodeid]
    result, output = run.result()
    assert result.returncode not in (0, NOT_WRITTEN), output[-3000:]
    assert f"CHECK FAILED: {caught_by}" in output, output[-3000:]


# --- in-process: the loader itself ------------------------------------------------------------------------
@pytest.fixture
def exercises(monkeypatch, tmp_path):
    """lessons/_exercises.py, loading from a fresh folder of stubs in tmp_path."""
    monkeypatch.syspath_prepend(str(LESSONS))
    import _exercises
    monkeypatch.setattr(_exercises, "_loaded", {})
    folder = write_solutions(tmp_path / "exercises", {})
    monkeypatch.setenv("LESSON_EXERCISES_DIR", str(folder))
    return _exercises, folder


def test_an_error_in_the_learners_code_keeps_its_traceback(exercises, capsys):
    _exercises, folder = exercises
    (folder / "causal_mask.py").write_text("def causal_mask(length):\n    return length[0]\n")
    mask = _exercises.load("causal_mask", causal_mask)
    with pytest.raises(TypeError):
        mask(4)
    assert "The error below comes from your exercise 'causal_mask'" in capsys.readouterr().err


def test_a_not_implemented_error_from_deeper_down_is_not_taken_for_the_stub(exercises):
    _exercises, folder = exercises
    (folder / "causal_mask.py").write_text("from tinytransformer import Module\n\n"
                                           "def causal_mask(length):\n    return Module().forward()\n")
    with pytest.raises(NotImplementedError):     # Module.forward raised it, not the exercise's stub
        _exercises.load("causal_mask", causal_mask)(4)


def test_a_missing_exercise_file_is_named(exercises, capsys):
    _exercises, folder = exercises
    with pytest.raises(SystemExit) as stop:
        _exercises.load("no_such_exercise", causal_mask)
    assert stop.value.code == NOT_WRITTEN
    assert f"expected {folder / 'no_such_exercise.py'}" in capsys.readouterr().out
