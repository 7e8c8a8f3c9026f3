"""Exercise: the forward pass of a whole GPT, assembled from the library's layers.

Graded by lessons/12_assemble_gpt.py --exercise: your logits against GPT's, in float64.
"""
import numpy as np

from tinytransformer import causal_mask


def gpt_forward(self, idx):
    """Token ids -> logits: the body of GPT.forward, without the loss.

    self: a tinytransformer.models.GPT, built from layers you call like functions:
        self.wte      Embedding: idx [B, T] -> token vectors [B, T, n_embd]
        self.wpe      PositionalEncoding: x [B, T, n_embd] -> x + the position vectors of 0 .. T−1
        self.drop     Dropout, or None (apply it to the sum of the two when it is not None)
        self.blocks   list of DecoderBlock: x -> block(x, mask=...) [B, T, n_embd], causal mask [T, T]
        self.ln_f     the final LayerNorm
        self.lm_head  Linear [n_embd -> vocab], or None when the output layer is tied to the token
                      embedding: then logits = h Eᵀ with E = self.wte.weight.data [vocab, n_embd]
    idx: integer token ids [B, T], T <= self.config.block_size.
    Returns logits [B, T, vocab_size].

        h₀ = E[idx] + P[:T]    h_l = Block_l(h_{l−1}, causal mask)    logits = LN(h_L) W_outᵀ
    """
    # TODO: your code here (about 8 lines).
    raise NotImplementedError
