"""Generating text: sample one token at a time from a GPT, or decode greedily with an encoder-decoder."""
from __future__ import annotations

import math
import numbers
import time

from . import backend
from .layers.attention import masked_softmax
from .backend import xp
from .module import check_token_batch, is_int


def check_sampling(temperature, top_k, greedy: bool = False) -> None:
    """temperature: a finite number > 0 (or 0, greedy, where ``greedy`` allows it); top_k: int ≥ 1 or None.

    A NaN temperature would pass every comparison (nan < 0 is False) and turn each probability into NaN.
    """
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a number, got {temperature!r} ({type(temperature).__name__}).")
    allowed = ("a finite number ≥ 0 (0 is greedy: always the most likely token)" if greedy
               else "a finite number > 0")
    if not math.isfinite(temperature) or temperature < 0 or (temperature == 0 and not greedy):
        raise ValueError(f"temperature must be {allowed}, got {temperature}. It divides the logits: below 1 "
                         "sharpens the distribution, above 1 flattens it.")
    if top_k is not None and (not is_int(top_k) or top_k < 1):
        error = ValueError if is_int(top_k) else TypeError
        raise error(f"top_k must be an int ≥ 1 (sample among the k most likely tokens) or None (among all), "
                    f"got {top_k!r}.")


def divide_by_temperature(logits, temperature: float):
    """(logits − row max) / T for logits [B, V] and any finite T > 0, without overflow: [B, V], all ≤ 0.

    A tiny T (1e-45) makes z/T overflow to ±inf, and softmax of that is NaN. Shifting each row by its
    maximum first changes no probability (softmax does not see shifts) and keeps the numbers finite:
    the largest entry is exactly 0 at any T, and the others are ≤ 0. Two guards cover what is left:
    below 1, T could still send −gap/T past the largest float, so gaps are floored at −10⁴·T (where
    exp(−10⁴) is already exactly 0, so no probability changes); and T is kept inside the dtype's range,
    as a smaller one would round to 0 (1e-46 in float32) and a larger one to inf. As T -> 0 the result
    puts all the probability on the most likely token (split evenly between ties): greedy.
    """
    finfo = xp.finfo(logits.dtype)
    t = min(max(float(temperature), float(finfo.tiny)), float(finfo.max))
    shifted = logits - logits.max(axis=-1, keepdims=True)                  # [B, V], ≤ 0
    if t < 1.0:
        shifted = xp.maximum(shifted, -1e4 * t)                            # exp(−10⁴) = 0: nothing lost
    return shifted / t                                                     # [B, V], ≤ 0


def next_token_probs(logits, temperature: float = 1.0, top_k: int | None = None):
    """Last-position logits [B, V] -> sampling probabilities [B, V].

    temperature T divides the logits: T < 1 sharpens the distribution (T -> 0 is greedy), T > 1 flattens
    it; any finite T > 0 gives finite probabilities (``divide_by_temperature``). top_k keeps only the k
    most likely tokens (the rest get probability 0).
    """
    check_sampling(temperature, top_k)
    logits = divide_by_temperature(logits, temperature)                    # [B, V]
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
             seed: int | None = None, use_cache: bool = True, on_token=None, vocab_size: int | None = None):
    """Continue each row of idx [B, T0] by max_new_tokens tokens sampled from a GPT; returns [B, T0 + n].

    temperature = 0 picks the most likely token (greedy); NaN, inf and negative temperatures are refused,
    and top_k must be an int ≥ 1 or None. The context is cropped to the model's last
    block_size tokens as it grows. With ``use_cache`` the keys and values of earlier positions are kept
    (a KV cache) so each step processes one new token instead of the whole context; once the context is
    longer than block_size every position shifts, the cache no longer applies, and each step runs the
    cropped window in full, exactly as without the cache. Both paths give the same tokens.
    ``on_token(idx)``, if given, is called after each new token with the ids so far (to show or time them).
    ``vocab_size`` < the model's keeps the sampling to ids below it: for a model whose embedding table has
    rows that no token of its tokenizer uses (GPT-2's 50,257 rows with a smaller tokenizer).
    """
    check_sampling(temperature, top_k, greedy=True)
    if not is_int(max_new_tokens) or max_new_tokens < 0:
        error = ValueError if is_int(max_new_tokens) else TypeError
        raise error(f"max_new_tokens must be an int ≥ 0, got {max_new_tokens!r}.")
    check_token_batch(idx, "generate", "prompt ids")
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
            last = logits[:, -1, :vocab_size]                              # [B, V] (or [B, vocab_size])
            if temperature == 0:
                next_ids = last.argmax(axis=-1)
            else:
                next_ids = sample(next_token_probs(last, temperature, top_k), rng)
            idx = xp.concatenate([idx, next_ids[:, None].astype(idx.dtype)], axis=1)
            if on_token is not None:
                on_token(idx)
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


# --- text in, text out: what scripts/gpt2.py and scripts/llama.py share --------------------------------------

def prompt_problem(prompt: str) -> str | None:
    """Why a prompt from the command line is not text, or None. Bytes that are not UTF-8 (a terminal in
    another encoding) reach Python as stand-in characters, U+DC80 + the byte ("surrogateescape"). They are
    refused before any work: fed to the model they would be bytes it never saw in training, and printed
    they would be an error."""
    try:
        prompt.encode("utf-8")
        return None
    except UnicodeEncodeError as err:
        char = prompt[err.start]
        what = f"the byte 0x{ord(char) - 0xDC00:02X}" if "\udc80" <= char <= "\udcff" else f"{char!r}"
        return (f"--prompt holds {what} at character {err.start}, which is not UTF-8 text: set the terminal to "
                "UTF-8 (e.g. LANG=C.UTF-8) or give the prompt in UTF-8")


def prompt_ids(tokenizer, prompt: str, model):
    """The prompt as a batch of one [1, T], or a ValueError that says what to change."""
    ids = list(map(int, tokenizer.encode(prompt)))
    if not ids:
        raise ValueError("The prompt is empty: give at least one character.")
    if len(ids) > model.config.block_size:
        raise ValueError(f"The prompt is {len(ids)} tokens, longer than the model's context of "
                         f"{model.config.block_size}: shorten it.")
    if max(ids) >= model.config.vocab_size:
        raise ValueError(f"The tokenizer gave id {max(ids):,}, but the model has {model.config.vocab_size:,} "
                         "rows: the tokenizer is not the model's.")
    return backend.asarray([ids])


def generate_timed(model, idx, max_new_tokens: int, **sampling) -> tuple:
    """generate(), timed: (ids [B, T0 + n], lines that report the speed of the prompt and of the new tokens).

    The first new token includes reading the whole prompt, so the two are reported apart."""
    times = []

    def tick(_):
        backend.synchronize()                      # a GPU's queued work counts
        times.append(time.perf_counter())
    start = time.perf_counter()
    out = generate(model, idx, max_new_tokens, on_token=tick, **sampling)
    lines = []
    if times:
        T = idx.shape[1]
        lines.append(f"prompt: {T} tokens and the first new one in {times[0] - start:.3f} s "
                     f"({T / (times[0] - start):.1f} prompt tokens/s)")
    if len(times) > 1:
        n, seconds = len(times) - 1, times[-1] - times[0]
        lines.append(f"generation: {n} more tokens in {seconds:.3f} s ({n / seconds:.1f} tokens/s, "
                     f"KV cache {'on' if sampling.get('use_cache', True) else 'off'})")
    return out, lines
