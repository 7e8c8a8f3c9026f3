"""What the model families share: the forward's input check, one backward per forward, GPT-2-style
initialisation and a parameter summary."""
from __future__ import annotations

import math

from .. import backend
from ..layers.embedding import Embedding
from ..layers.linear import Linear
from ..layers.positional import LearnedPositionalEncoding
from ..module import Module, check_token_batch


class Model(Module):
    """A whole model (GPT, EncoderClassifier, Seq2Seq): ``backward`` belongs to the last ``forward``.

    Each layer keeps what its forward computed for its backward (``Linear.x``, ``LayerNorm.xhat``, the
    loss's probabilities, ...). So a backward is right only for the *last* forward, and only once:

    - after ``model(x1, y1); model(x2)`` the layers hold x2's activations but the loss holds x1's:
      ``backward()`` would mix the two, so it is refused (``backward(dlogits)`` with x2's dlogits is fine);
    - a second ``backward()`` would add the same gradients to ``param.grad`` again: refused;
    - ``forward_cached``, ``encode`` and ``decode`` (generation), and a forward that stops with an error,
      overwrite some of the kept activations: backward is refused until a forward finishes.

    Gradient accumulation is a forward and a backward per batch, in turn; each backward adds its share:

        model.zero_grad()
        for x, y in micro_batches:
            _, loss = model(x, y)
            model.backward()

    A model's ``forward`` calls ``_activations_replaced(...)`` first and ends with
    ``_forward_finished(logits, loss)``; its ``backward`` starts from ``_start_backward(dlogits)``.
    Plain attributes and a few comparisons per step: nothing here touches an array's contents.
    """

    forward_example = "model(inputs, targets)"  # how to call forward, for the messages
    _finished = None        # (logits shape, whether there is a loss) of a forward not yet back-propagated
    _replaced_by = None     # what overwrote the kept activations since the last finished forward
    _backward_ran = False   # whether backward already ran for the last finished forward

    def _check_tokens(self, idx, what: str = "token ids", axes: str = "[B, T]") -> None:
        """Every forward's first line: ``idx`` is a batch of token ids ``axes``, no longer than the context
        (also with sinusoidal positions, which have no limit of their own)."""
        check_token_batch(idx, type(self).__name__, what, axes)
        if idx.shape[1] > self.config.block_size:
            raise ValueError(f"Sequence too long: the model context is {self.config.block_size}, got "
                             f"{idx.shape[1]} ({what} {tuple(idx.shape)}; they must be {axes} with {axes[-2]} ≤ "
                             "block_size). Crop to the last block_size tokens.")

    def _activations_replaced(self, by: str) -> None:
        """Something starts overwriting the layers' kept activations; the first such call is the one named."""
        if self._replaced_by is None:
            self._replaced_by = by
        self._finished = None

    def _forward_finished(self, logits, loss):
        """-> (logits, loss), now ready for one backward."""
        self._finished = (tuple(logits.shape), loss is not None)
        self._replaced_by, self._backward_ran = None, False
        return logits, loss

    def _start_backward(self, dlogits):
        """The gradient backward starts from: ``dlogits`` if given, else that of the last forward's loss."""
        name, example = type(self).__name__, self.forward_example
        if self._finished is None:
            if self._replaced_by is not None:
                raise RuntimeError(
                    f"{name}.backward(): the activations kept for backward are not those of a finished "
                    f"forward: {self._replaced_by} replaced them. Run the forward again, "
                    f"`logits, loss = {example}`, then call backward().")
            if self._backward_ran:
                raise RuntimeError(
                    f"{name}.backward() was already called for the last forward; a second call would add "
                    "the same gradients to param.grad again. Run a forward before each backward (to "
                    f"accumulate gradients over batches, call `{example}` and backward() once per batch).")
            raise RuntimeError(f"{name}.backward() was called before any forward: there is nothing to "
                               f"back-propagate. Run `logits, loss = {example}` first, then backward().")
        shape, has_loss = self._finished
        if dlogits is None and not has_loss:
            raise RuntimeError(
                f"{name}.backward() starts from the loss, but the last forward was given no targets and "
                "computed none (the loss of an earlier forward does not belong to the activations kept "
                f"now). Pass the targets to the forward, `{example}`, or give backward the gradient of "
                "the logits: backward(dlogits).")
        if dlogits is not None and tuple(dlogits.shape) != shape:
            raise ValueError(f"{name}.backward(dlogits): dlogits has shape {tuple(dlogits.shape)}, but the "
                             f"last forward's logits have shape {shape}. dlogits is the gradient of the "
                             "loss with respect to those logits: give it their shape.")
        self._finished, self._backward_ran = None, True
        return dlogits if dlogits is not None else self.loss_fn.backward()


def init_gpt2(model: Module, n_layer: int, rng, std: float = 0.02) -> None:
    """GPT-2's initialisation: weights ~ N(0, 0.02²), biases 0 (LayerNorm keeps γ = 1, β = 0).

    The projections that write into the residual stream (attention's out_proj, the FFN's fc2 or
    SwiGLU's down_proj) get
    std 0.02/√(2·n_layer): each block adds two such terms to the stream, and scaling them down keeps the
    stream's variance from growing with depth.
    """
    residual_std = std / math.sqrt(2 * n_layer)
    for name, module in model.named_modules():
        if isinstance(module, Linear):
            writes_residual = name.endswith(("out_proj", "fc2", "down_proj"))
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
