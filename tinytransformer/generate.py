"""Generating text: sample one token at a time from a GPT, or decode greedily with an encoder-decoder."""
from __future__ import annotations

from . import backend
from .attention import masked_softmax
from .backend import xp


def next_token_probs(logits, temperature: float = 1.0, top_k: int | None = None):
    """Last-position logits [B, V] -> sampling probabilities [B, V].

    temperature T divides the logits: T < 1 sharpens the distribution (T -> 0 is greedy), T > 1 flattens
    it. top_k keeps only the k most likely tokens (the rest get probability 0).
    """
    logits = logits / temperature                                          # [B, V]
    if top_k is not None:
        k = min(top_k, logits.shape[-1])
        kth = xp.sort(logits, axis=-1)[:, -k][:, None]                     # [B, 1]: k-th largest
        return masked_softmax(logits, logits >= kth)
    return masked_softmax(logits)


def sample(probs, rng):
    """One token id per row of probs [B, V], by inverse CDF with uniforms from the host generator ``rng``.

    Drawing the uniforms on the host makes a seed give the same text on every backend.
    """
    u = backend.asarray(rng.random(probs.shape[0]), dtype=probs.dtype)[:, None]   # [B, 1]
    cdf = xp.cumsum(probs, axis=-1)                                        # [B, V]
    ids = (cdf < u).sum(axis=-1)                                           # first index with cdf ≥ u
    return xp.minimum(ids, probs.shape[-1] - 1)                            # guard against cdf[-1] < 1 by rounding


def generate(model, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             seed: int | None = None, use_cache: bool = True):
    """Continue each row of idx [B, T0] by max_new_tokens tokens sampled from a GPT; returns [B, T0 + n].

    temperature = 0 picks the most likely token (greedy). The context is cropped to the model's last
    block_size tokens as it grows. With ``use_cache`` the keys and values of earlier positions are kept
    (a KV cache) so each step processes one new token instead of the whole context; once the context is
    longer than block_size every position shifts, the cache no longer applies, and each step runs the
    cropped window in full, exactly as without the cache. Both paths give the same tokens.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be ≥ 0, got {temperature}.")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be ≥ 1, got {top_k}.")
    if idx.ndim != 2 or idx.shape[1] == 0:
        raise ValueError(f"idx must be [B, T] with T ≥ 1 (a prompt of at least one token), got {tuple(idx.shape)}.")
    block_size = model.config.block_size
    rng = backend.new_host_rng(seed)
    was_training = model.training
    model.eval()
    caches = None
    try:
        for _ in range(max_new_tokens):
            length = idx.shape[1]
            if use_cache and length <= block_size:
                if caches is None:  # first step: run the whole prompt once and fill the cache
                    caches = [{} for _ in model.blocks]
                    logits = model.forward_cached(idx, caches)
                else:               # later steps: only the newest token
                    logits = model.forward_cached(idx[:, -1:], caches)
            else:
                logits, _ = model(idx[:, -block_size:])                    # [B, ≤block_size, V]
            last = logits[:, -1, :]                                        # [B, V]
            if temperature == 0:
                next_ids = last.argmax(axis=-1)
            else:
                next_ids = sample(next_token_probs(last, temperature, top_k), rng)
            idx = xp.concatenate([idx, next_ids[:, None].astype(idx.dtype)], axis=1)
    finally:
        model.train(was_training)
    return idx


def greedy_decode(model, src, bos_id: int, eos_id: int | None = None, max_len: int | None = None):
    """Encoder-decoder inference: start from BOS, append the most likely token until EOS or max_len.

    src [B, S] -> output ids [B, ≤ max_len] (without the BOS). Rows that finished early are padded with
    the model's pad_id after their EOS.
    """
    max_len = max_len if max_len is not None else model.config.block_size
    was_training = model.training
    model.eval()
    try:
        memory = model.encode(src)                                         # [B, S, n_embd], once
        tgt = xp.full((src.shape[0], 1), bos_id, dtype=src.dtype)          # [B, 1]
        done = xp.zeros(src.shape[0], dtype=bool)
        for _ in range(max_len):
            logits = model.decode(memory, src, tgt)                        # [B, t, V]
            next_ids = logits[:, -1, :].argmax(axis=-1).astype(src.dtype)  # [B]
            next_ids = xp.where(done, model.config.pad_id, next_ids)
            tgt = xp.concatenate([tgt, next_ids[:, None]], axis=1)
            if eos_id is not None:
                done = done | (next_ids == eos_id)
                if bool(done.all()):
                    break
            if tgt.shape[1] > model.config.block_size:
                break
    finally:
        model.train(was_training)
    return tgt[:, 1:]
