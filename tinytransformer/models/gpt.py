"""A decoder-only language model (GPT): predict each next token from the ones before it.

    idx [B, T] -> token embedding + position -> n_layer × DecoderBlock (causal) -> LayerNorm -> logits

As nanoGPT's model.py, in NumPy, with the backward written out: ``backward`` calls every layer's
backward in exactly the reverse order of ``forward``. The same class is a LLaMA-family model with
``positional="rope"``, ``normalization="rmsnorm"``, ``activation="swiglu"``, ``bias=False``,
``tie_weights=False`` and optionally ``n_kv_head`` (grouped-query) and ``window`` (local attention).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import backend
from ..layers.attention import cache_position, causal_mask
from ..layers.blocks import DecoderBlock, make_norm
from ..layers.dropout import Dropout
from ..layers.embedding import Embedding
from ..layers.linear import Linear
from ..layers.loss import CrossEntropyLoss
from ..layers.positional import PositionalEncoding
from ..module import check_token_batch, is_int
from .common import Model, init_gpt2, summary


LLAMA3_SCALING = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


def is_llama3_scaling(scaling) -> bool:
    """Whether ``scaling`` holds exactly Llama 3's four numbers, each positive, the low factor below the high."""
    def positive(value):
        return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < float("inf")
    return (isinstance(scaling, dict) and set(scaling) == set(LLAMA3_SCALING)
            and all(positive(scaling[key]) for key in LLAMA3_SCALING)
            and scaling["low_freq_factor"] < scaling["high_freq_factor"])


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64          # the context: how many tokens the model sees at once
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True             # biases in Linear layers and LayerNorms (nanoGPT: False)
    norm: str = "pre"             # where the norm sits: "pre" (GPT-2) or "post" (2017 paper)
    activation: str = "gelu"      # "gelu", "relu", or "swiglu" (LLaMA's gated feed-forward)
    positional: str = "learned"   # "learned" (GPT-2), "sinusoidal" (2017 paper) or "rope" (LLaMA)
    tie_weights: bool = True      # the output layer reuses the token embedding table
    seed: int = 1337              # initial weights and dropout masks
    normalization: str = "layernorm"   # "layernorm" (GPT-2) or "rmsnorm" (LLaMA)
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0   # RoPE's base: the slowest pair turns once in about 2π·theta positions
    ffn_hidden: int | None = None  # the feed-forward's width: 4·n_embd (GELU), LLaMA's rule (SwiGLU)
    n_kv_head: int | None = None  # key/value heads (grouped-query attention); None: one per query head
    window: int | None = None     # local attention: each position sees the last `window` positions
    rope_scaling: dict | None = None  # Llama 3.1's: factor, low_freq_factor, high_freq_factor,
    #                                   original_max_position_embeddings (layers/rotary.py, llama3_frequencies)

    CHOICES = {"norm": ("pre", "post"), "activation": ("gelu", "relu", "swiglu"),
               "positional": ("learned", "sinusoidal", "rope"), "normalization": ("layernorm", "rmsnorm")}

    def __post_init__(self):
        # A config may come from a file (a checkpoint, a config.json): refuse nonsense before any layer is
        # built, with the field and its value, rather than a ZeroDivisionError or a model that never ends.
        for field in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, field)
            if not is_int(value) or value < 1:
                raise ValueError(f"GPTConfig.{field} is {value!r}: it must be a whole number >= 1.")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig.n_head {self.n_head} does not divide n_embd {self.n_embd}: each head "
                             "gets n_embd / n_head dimensions.")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0 <= self.dropout < 1:
            raise ValueError(f"GPTConfig.dropout is {self.dropout!r}: it must be a number in [0, 1).")
        for field in ("bias", "tie_weights"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"GPTConfig.{field} is {getattr(self, field)!r}: it must be true or false.")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"GPTConfig.seed is {self.seed!r}: it must be a whole number >= 0.")
        for field, choices in self.CHOICES.items():
            if getattr(self, field) not in choices:
                raise ValueError(f"GPTConfig.{field} is {getattr(self, field)!r}: choose one of {list(choices)}.")
        for field in ("norm_eps", "rope_theta"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"GPTConfig.{field} is {value!r}: it must be a positive number.")
        for field in ("ffn_hidden", "n_kv_head", "window"):
            value = getattr(self, field)
            if value is not None and (not is_int(value) or value < 1):
                raise ValueError(f"GPTConfig.{field} is {value!r}: it must be a whole number >= 1, or null.")
        if self.n_kv_head is not None and self.n_head % self.n_kv_head:
            raise ValueError(f"GPTConfig.n_kv_head {self.n_kv_head} does not divide n_head {self.n_head}: each "
                             "key/value head serves an equal group of query heads.")
        if self.rope_scaling is not None and not is_llama3_scaling(self.rope_scaling):
            raise ValueError(f"GPTConfig.rope_scaling is {self.rope_scaling!r}: it must give Llama 3's "
                             f"{', '.join(LLAMA3_SCALING)}, each a positive number, with low_freq_factor < "
                             "high_freq_factor.")
        if self.positional == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"GPTConfig: RoPE turns features in pairs, so the head size n_embd / n_head "
                             f"= {self.n_embd // self.n_head} must be even.")

    def to_dict(self) -> dict:
        return asdict(self)


class GPT(Model):
    """Decoder-only Transformer language model.

    Forward:  h₀ = E[idx] + P[:T];  h_l = Block_l(h_{l−1}, causal mask);  logits = LN(h_L) W_outᵀ
    With ``tie_weights`` W_out is the token embedding E itself ([vocab, n_embd]), so the output layer
    scores each token by how well h matches its embedding, and E's gradient gets both contributions.
    ``backward`` belongs to the last forward and runs once per forward (see ``Model``).
    """

    forward_example = "model(idx, targets)"

    def __init__(self, config: GPTConfig):
        self.config = c = config
        rng = backend.new_host_rng(c.seed)
        self.wte = Embedding(c.vocab_size, c.n_embd, rng=rng)
        # RoPE adds nothing to the token vectors: it turns queries and keys inside every attention.
        rope = c.positional == "rope"
        self.wpe = None if rope else PositionalEncoding(c.positional, c.n_embd, c.block_size, rng=rng)
        self.drop = Dropout(c.dropout, seed=c.seed) if c.dropout > 0 else None
        self.blocks = [DecoderBlock(c.n_embd, c.n_head, d_hidden=c.ffn_hidden, activation=c.activation,
                                    dropout=c.dropout, norm=c.norm, bias=c.bias, seed=c.seed + 1 + i, rng=rng,
                                    n_kv_head=c.n_kv_head, rope_theta=c.rope_theta if rope else None,
                                    window=c.window, normalization=c.normalization, norm_eps=c.norm_eps,
                                    rope_scaling=c.rope_scaling)
                       for i in range(c.n_layer)]
        self.ln_f = make_norm(c.n_embd, c.normalization, c.bias, c.norm_eps)
        self.lm_head = None if c.tie_weights else Linear(c.n_embd, c.vocab_size, bias=False, rng=rng)
        self.loss_fn = CrossEntropyLoss()
        init_gpt2(self, c.n_layer, rng)
        self.h = None  # final hidden states [B, T, n_embd], kept for the output layer's backward

    def forward(self, idx, targets=None):
        """idx [B, T] token ids -> (logits [B, T, vocab], loss or None)."""
        self._check_tokens(idx)
        T = idx.shape[1]
        self._activations_replaced("a forward that stopped with an error")     # until it finishes
        x = self.wte(idx)                                                       # [B, T, n_embd]
        if self.wpe is not None:
            x = self.wpe(x)
        if self.drop is not None:
            x = self.drop(x)
        mask = causal_mask(T, window=self.config.window)                        # [T, T]
        for block in self.blocks:
            x = block(x, mask=mask)                                             # [B, T, n_embd]
        logits = self._head(self.ln_f(x))                                       # [B, T, vocab]
        loss = self.loss_fn(logits, targets) if targets is not None else None
        return self._forward_finished(logits, loss)

    def _head(self, h):
        self.h = h
        if self.lm_head is not None:
            return self.lm_head(h)                                              # [B, T, vocab]
        return h @ self.wte.weight.data.T                                       # [B,T,d] @ [d,vocab]

    def backward(self, dlogits=None):
        """Gradients of every parameter (accumulated); from the loss of the last forward by default."""
        dlogits = self._start_backward(dlogits)                                 # [B, T, vocab]
        if self.lm_head is not None:
            dh = self.lm_head.backward(dlogits)
        else:  # tied: logits = h Eᵀ, so dE += dlogitsᵀ h and dh = dlogits E
            V, d = self.wte.weight.data.shape
            self.wte.weight.grad += dlogits.reshape(-1, V).T @ self.h.reshape(-1, d)   # [V, d]
            dh = dlogits @ self.wte.weight.data                                 # [B, T, d]
        dx = self.ln_f.backward(dh)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        if self.drop is not None:
            dx = self.drop.backward(dx)
        if self.wpe is not None:
            dx = self.wpe.backward(dx)
        self.wte.backward(dx)

    def forward_cached(self, idx, caches):
        """Logits for new tokens idx [B, T_new] given ``caches`` (one dict per block) of earlier ones.

        Generation only: the keys and values of earlier positions are reused rather than recomputed.
        There is no backward for it; it overwrites what the last forward kept for one.
        """
        check_token_batch(idx, "GPT.forward_cached")
        self._activations_replaced("forward_cached() (generation)")
        x = self.wte(idx)                                                       # [B, T_new, n_embd]
        if self.wpe is not None:
            x = self.wpe(x, start=cache_position(caches[0]))
        for block, cache in zip(self.blocks, caches):
            x = block(x, cache=cache)
        return self._head(self.ln_f(x))                                         # [B, T_new, vocab]

    def summary(self) -> str:
        return summary(self)
