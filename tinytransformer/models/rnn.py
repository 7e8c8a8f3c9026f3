"""A recurrent language model: what came before the Transformer, for comparison with it.

    idx [B, T] -> token embedding -> RNN (tanh) -> Linear -> logits [B, T, vocab]

No positional encoding: the recurrence itself knows the order, since position t is read at step t.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import backend
from ..layers.embedding import Embedding
from ..layers.linear import Linear
from ..layers.loss import CrossEntropyLoss
from ..layers.rnn import RNN
from ..module import check_token_batch
from .common import Model, summary


@dataclass
class RNNConfig:
    vocab_size: int = 65
    n_embd: int = 32              # size of each token vector, the RNN's input
    n_hidden: int = 64            # size of the hidden state h: all the RNN remembers of the past
    seed: int = 1337              # initial weights

    def to_dict(self) -> dict:
        return asdict(self)


class RNNLanguageModel(Model):
    """Embedding -> tanh RNN -> Linear head: predict each next token from the hidden state.

    Forward:   x_t = E[idx_t];   h_t = tanh(x_t W_xh + h_{t−1} W_hh + b);   logits_t = h_t W_out + b_out
    Backward:  the same layers' backwards in reverse: head, RNN (through time), embedding.
    ``backward`` belongs to the last forward and runs once per forward (see ``Model``).
    """

    forward_example = "model(idx, targets)"

    def __init__(self, config: RNNConfig):
        self.config = c = config
        rng = backend.new_host_rng(c.seed)
        self.wte = Embedding(c.vocab_size, c.n_embd, rng=rng)
        self.rnn = RNN(c.n_embd, c.n_hidden, rng=rng)
        self.lm_head = Linear(c.n_hidden, c.vocab_size, rng=rng)
        self.loss_fn = CrossEntropyLoss()

    def forward(self, idx, targets=None):
        """idx [B, T] token ids -> (logits [B, T, vocab], loss or None)."""
        check_token_batch(idx, "RNNLanguageModel")
        self._activations_replaced("a forward that stopped with an error")     # until it finishes
        x = self.wte(idx)                                                       # [B, T, n_embd]
        h = self.rnn(x)                                                         # [B, T, n_hidden]
        logits = self.lm_head(h)                                                # [B, T, vocab]
        loss = self.loss_fn(logits, targets) if targets is not None else None
        return self._forward_finished(logits, loss)

    def backward(self, dlogits=None):
        """Gradients of every parameter (accumulated); returns dx [B, T, n_embd], the gradient at each
        token's vector (what lessons/03 measures)."""
        dlogits = self._start_backward(dlogits)                                 # [B, T, vocab]
        dh = self.lm_head.backward(dlogits)                                     # [B, T, n_hidden]
        dx = self.rnn.backward(dh)                                              # [B, T, n_embd]
        self.wte.backward(dx)
        return dx

    def summary(self) -> str:
        return summary(self)
