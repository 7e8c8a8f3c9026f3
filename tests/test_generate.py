"""Generation: sampling from a GPT (temperature, top-k, the KV cache) and greedy decoding with Seq2Seq.

The weights are re-drawn larger than GPT-2's (randomise_weights) so that the next-token distributions
are far from uniform: top-k and temperature then have something to cut and to flatten.
"""
import math
import warnings

import numpy
import pytest

from helpers.models import randomise_weights
from tinytransformer import backend
from tinytransformer.generate import generate, greedy_decode, next_token_probs, sample
from tinytransformer.models import GPT, GPTConfig, Seq2Seq, Seq2SeqConfig

VOCAB, BLOCK = 11, 8


def small_gpt(seed=0, **options):
    config = dict(vocab_size=VOCAB, block_size=BLOCK, n_layer=2, n_head=2, n_embd=16)
    model = GPT(GPTConfig(**{**config, **options}))
    randomise_weights(model, seed=seed)
    return model


def prompt(length, batch=2, seed=0):
    return backend.asarray(numpy.random.default_rng(seed).integers(0, VOCAB, (batch, length)))


def recomputed_logits(model, tokens, t):
    """Logits for the token at position t, recomputed from scratch (no cache) on the last block_size tokens."""
    logits, _ = model(tokens[:, max(0, t - BLOCK):t])
    return backend.to_numpy(logits[:, -1, :])                              # [B, V]


# --- the KV cache ----------------------------------------------------------------------------------------
#
# With the cache, each step feeds one new token and reuses the keys and values of the earlier ones;
# without it, each step runs the whole (cropped) context. The tokens must be the same, every one.
# 12 new tokens after prompts of 1 to 8 always run past block_size = 8, where the cache is dropped.

CACHE_CASES = [  # (prompt length, temperature, top_k, seed)
    (1, 0.0, None, 0), (3, 1.0, None, 1), (3, 0.7, 3, 2), (8, 1.5, None, 3), (5, 1.0, 1, 4), (2, 2.0, 5, 5)]


def assert_cache_changes_nothing(model):
    for length, temperature, top_k, seed in CACHE_CASES:
        start = prompt(length, seed=seed)
        with_cache = generate(model, start, 12, temperature, top_k, seed=seed, use_cache=True)
        without = generate(model, start, 12, temperature, top_k, seed=seed, use_cache=False)
        assert with_cache.shape == (2, length + 12)
        numpy.testing.assert_array_equal(backend.to_numpy(with_cache), backend.to_numpy(without),
                                         err_msg=f"prompt {length}, temperature {temperature}, top_k {top_k}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("norm, positional", [("pre", "learned"), ("post", "sinusoidal")])
def test_kv_cache_gives_the_same_tokens(dtype, norm, positional):
    with backend.using(dtype):
        assert_cache_changes_nothing(small_gpt(norm=norm, positional=positional))


def test_kv_cache_gives_the_same_tokens_under_the_standin_backend():
    with backend.using(backend="standin"):
        model = small_gpt()
        assert_cache_changes_nothing(model)
        on_standin = backend.to_numpy(generate(model, prompt(3), 12, temperature=1.0, seed=7))
    on_numpy = generate(small_gpt(), prompt(3), 12, temperature=1.0, seed=7)
    numpy.testing.assert_array_equal(on_standin, on_numpy)   # the sampling uniforms come from the host


def test_kv_cache_logits_match_a_full_forward():
    """Below the cache's token choices: the cached logits themselves equal those of a full forward."""
    with backend.using("float64"):
        model = small_gpt()
        tokens = prompt(BLOCK, seed=1)
        caches = [{} for _ in model.blocks]
        first = model.forward_cached(tokens[:, :3], caches)                        # prompt of 3 at once
        steps = [model.forward_cached(tokens[:, t:t + 1], caches) for t in range(3, BLOCK)]  # then one by one
        cached = numpy.concatenate([first] + steps, axis=1)                        # [B, BLOCK, V]
        full, _ = model(tokens)
    numpy.testing.assert_allclose(cached, full, rtol=0, atol=1e-12)


# --- seeds, top-k, temperature -----------------------------------------------------------------------------

def test_the_seed_decides_the_text():
    model = small_gpt()
    a = generate(model, prompt(2), 10, temperature=1.0, seed=1)
    b = generate(model, prompt(2), 10, temperature=1.0, seed=1)
    c = generate(model, prompt(2), 10, temperature=1.0, seed=2)
    numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(a, c)     # 20 tokens from 11 each: equal by chance is vanishingly rare


def test_on_token_sees_each_new_token_as_it_is_chosen():
    model = small_gpt()
    seen = []
    out = generate(model, prompt(3), 10, temperature=1.0, seed=1, on_token=lambda ids: seen.append(ids.copy()))
    assert [ids.shape[1] for ids in seen] == list(range(4, 14))             # one call per token, in order
    numpy.testing.assert_array_equal(seen[-1], out)
    for ids in seen:
        numpy.testing.assert_array_equal(ids, out[:, :ids.shape[1]])


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_top_k_1_is_greedy(temperature):
    model = small_gpt()
    greedy = generate(model, prompt(3), 10, temperature=0)
    numpy.testing.assert_array_equal(generate(model, prompt(3), 10, temperature, top_k=1, seed=3), greedy)


def test_greedy_picks_the_most_likely_token_at_every_step():
    with backend.using("float64"):
        model = small_gpt()
        tokens = generate(model, prompt(3), 10, temperature=0)
        for t in range(3, tokens.shape[1]):
            assert (tokens[:, t] == recomputed_logits(model, tokens, t).argmax(axis=-1)).all(), f"step {t}"


def ranks_of_sampled_tokens(model, tokens, start):
    """For each generated token, how many tokens had a larger logit at its step (0 = the most likely)."""
    ranks = []
    for t in range(start, tokens.shape[1]):
        logits = recomputed_logits(model, tokens, t)                       # [B, V]
        chosen = logits[numpy.arange(len(logits)), tokens[:, t]]           # [B]
        ranks.extend((logits > chosen[:, None]).sum(axis=-1).tolist())
    return ranks


def test_top_k_samples_only_among_the_k_most_likely():
    with backend.using("float64"):
        model = small_gpt()
        start = prompt(2, batch=4)
        # A high temperature spreads the probability, so that without top-k unlikely tokens do get picked.
        free = generate(model, start, 14, temperature=4.0, seed=0)
        top_3 = generate(model, start, 14, temperature=4.0, top_k=3, seed=0)
        assert max(ranks_of_sampled_tokens(model, free, 2)) >= 3                 # the check has teeth ...
        ranks = ranks_of_sampled_tokens(model, top_3, 2)
        assert max(ranks) <= 2                                                   # ... and top-k passes it
        assert len(set(ranks)) > 1                                               # it sampled, not just argmax


def entropy(probs):
    p = backend.to_numpy(probs)
    return -(p * numpy.log(numpy.where(p > 0, p, 1.0))).sum(axis=-1)


def test_temperature_flattens_the_distribution():
    with backend.using("float64"):
        model = small_gpt()
        logits, _ = model(prompt(4, batch=3))
        last = logits[:, -1, :]                                               # [B, V]
        temperatures = [0.05, 0.25, 0.5, 1.0, 2.0, 4.0, 16.0, 1e4]
        entropies = numpy.stack([entropy(next_token_probs(last, t)) for t in temperatures])  # [n_T, B]
    assert (numpy.diff(entropies, axis=0) > 0).all(), entropies           # rises with the temperature
    assert entropies[0].max() < 0.1                                        # cold: almost all on one token
    numpy.testing.assert_allclose(entropies[-1], math.log(VOCAB), rtol=1e-6)   # hot: uniform


def test_top_k_probabilities_keep_k_tokens_and_sum_to_one():
    with backend.using("float64"):
        logits = backend.randn((3, VOCAB), rng=numpy.random.default_rng(0))
        probs = backend.to_numpy(next_token_probs(logits, temperature=0.8, top_k=4))
    assert ((probs > 0).sum(axis=-1) == 4).all()
    numpy.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    kept = numpy.argsort(-logits, axis=-1)[:, :4]
    assert (numpy.take_along_axis(probs, kept, axis=-1) > 0).all()         # the four with the largest logits


def test_sample_draws_each_token_with_its_probability():
    """Inverse-CDF sampling: over many draws, each token's frequency approaches its probability."""
    probs = numpy.array([0.5, 0.0, 0.2, 0.25, 0.05])
    n = 20000
    ids = sample(numpy.tile(probs, (n, 1)), numpy.random.default_rng(0))
    frequencies = numpy.bincount(ids, minlength=len(probs)) / n
    standard_error = numpy.sqrt(probs * (1 - probs) / n)
    assert (numpy.abs(frequencies - probs) <= 5 * standard_error).all(), frequencies
    assert frequencies[1] == 0                                             # probability 0: never drawn


# --- what generate refuses, and what it leaves as it found it -----------------------------------------------

def test_generate_rejects_bad_arguments():
    model = small_gpt()
    for temperature in [-0.5, float("nan"), float("inf"), -float("inf")]:
        with pytest.raises(ValueError, match=rf"temperature must be a finite number ≥ 0 \(0 is greedy: always "
                                             rf"the most likely token\), got {temperature}\."):
            generate(model, prompt(2), 3, temperature=temperature)
    with pytest.raises(TypeError, match=r"temperature must be a number, got '0.8' \(str\)"):
        generate(model, prompt(2), 3, temperature="0.8")
    for top_k, error in [(0, ValueError), (-2, ValueError), (2.5, TypeError), (True, TypeError)]:
        with pytest.raises(error, match=rf"top_k must be an int ≥ 1 \(sample among the k most likely tokens\) "
                                        rf"or None \(among all\), got {top_k}\."):
            generate(model, prompt(2), 3, top_k=top_k)
    with pytest.raises(ValueError, match=r"max_new_tokens must be an int ≥ 0, got -5"):
        generate(model, prompt(2), -5)
    with pytest.raises(ValueError, match=r"generate got empty prompt ids, shape \(2, 0\): \[B, T\] needs at "
                                         r"least one sequence of at least one token"):
        generate(model, prompt(0), 3)
    with pytest.raises(ValueError, match=r"generate expects prompt ids of shape \[B, T\], got shape \(3,\)\. "
                                         r"One sequence of T ids is a batch of one: ids\[None, :\]"):
        generate(model, backend.asarray(numpy.array([1, 2, 3])), 3)
    with pytest.raises(TypeError, match=r"generate expects prompt ids as an integer array of shape \[B, T\], "
                                        r"got a list\. Convert it first: backend.asarray\(ids\)"):
        generate(model, [[1, 2]], 3)
    assert generate(model, prompt(2), 0).shape == (2, 2)                   # 0 new tokens is allowed


def test_next_token_probs_refuses_what_is_not_a_temperature():
    logits = backend.randn((2, VOCAB), rng=numpy.random.default_rng(0))
    for temperature in [0, 0.0, -1.0, float("nan"), float("inf")]:
        with pytest.raises(ValueError, match=rf"temperature must be a finite number > 0, got {temperature}\. "
                                             "It divides the logits"):
            next_token_probs(logits, temperature)


# --- temperatures at the ends of the float range --------------------------------------------------------
#
# z/T overflows for a tiny T (1e-45: every z/T is ±inf, and softmax gives NaN; in float32 1e-46 even
# rounds to 0), and a huge T rounds to inf in float32. Every finite T > 0 must give a distribution, and
# the right one: all on the most likely token as T -> 0, uniform as T -> inf.

TIES = numpy.array([[1.0, 3.0, 3.0, -2.0, 0.5],     # two most likely tokens, tied
                    [0.2, -1.0, 4.0, 3.99, 1.0]])   # a near tie: 4.0 wins


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("temperature", [1e-30, 1e-45, 1e-46, 5e-324])
def test_a_tiny_temperature_gives_the_greedy_distribution_not_nan(dtype, temperature):
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                       # no overflow warnings either
        probs = backend.to_numpy(next_token_probs(backend.asarray(TIES, dtype=dtype), temperature))
    numpy.testing.assert_array_equal(probs, [[0, 0.5, 0.5, 0, 0], [0, 0, 1, 0, 0]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("temperature", [1e30, 1e300])
def test_a_huge_temperature_gives_the_uniform_distribution(dtype, temperature):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probs = backend.to_numpy(next_token_probs(backend.asarray(TIES, dtype=dtype), temperature))
    numpy.testing.assert_allclose(probs, 1 / TIES.shape[1], rtol=1e-6)


@pytest.mark.parametrize("temperature", [1e-3, 0.05, 0.8, 1.0, 3.0, 1e4])
def test_the_overflow_guards_change_no_probability(temperature):
    """Against softmax(z/T) written out in float64, at temperatures where it does not overflow."""
    logits = 4.0 * numpy.random.default_rng(1).standard_normal((3, VOCAB))
    scaled = logits / temperature
    expected = numpy.exp(scaled - scaled.max(axis=-1, keepdims=True))
    expected /= expected.sum(axis=-1, keepdims=True)
    with backend.using("float64"):
        probs = backend.to_numpy(next_token_probs(backend.asarray(logits), temperature))
    numpy.testing.assert_allclose(probs, expected, rtol=1e-12, atol=1e-300)


def test_generate_at_a_tiny_temperature_is_greedy():
    model = small_gpt()
    greedy = backend.to_numpy(generate(model, prompt(3), 10, temperature=0))
    for temperature in [1e-45, 1e-46]:
        tiny = backend.to_numpy(generate(model, prompt(3), 10, temperature=temperature, seed=0))
        numpy.testing.assert_array_equal(tiny, greedy, err_msg=f"temperature {temperature}")


def test_generation_runs_in_eval_mode_and_restores_the_mode():
    model = small_gpt(dropout=0.3)

    def modes():
        return {module.training for _, module in model.named_modules()}

    model.train()
    in_training_mode = generate(model, prompt(2), 8, temperature=1.0, seed=0)
    assert modes() == {True}
    model.eval()
    in_eval_mode = generate(model, prompt(2), 8, temperature=1.0, seed=0)
    assert modes() == {False}
    numpy.testing.assert_array_equal(in_training_mode, in_eval_mode)           # dropout was off both times


# --- greedy decoding with an encoder-decoder --------------------------------------------------------------

PAD, BOS = 0, 1
SOURCE = numpy.array([[3, 5, 2, 6, PAD, PAD], [4, 1, 1, 2, 3, 5], [7, 8, 2, PAD, PAD, PAD]])


def small_seq2seq(seed):
    model = Seq2Seq(Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=9, block_size=8, n_encoder_layer=1,
                                  n_decoder_layer=2, n_head=2, n_embd=16, pad_id=PAD))
    randomise_weights(model, seed=seed)
    return model


def step_by_step(model, src, n):
    """Greedy decoding the long way: a full model.forward at every step, the argmax appended."""
    tgt = numpy.full((len(src), 1), BOS)
    for _ in range(n):
        logits, _ = model(src, tgt)
        tgt = numpy.concatenate([tgt, logits[:, -1, :].argmax(axis=-1)[:, None]], axis=1)
    return tgt[:, 1:]                                                       # without the BOS


@pytest.mark.parametrize("seed", [0, 3])
def test_greedy_decode_is_the_argmax_at_every_step(seed):
    with backend.using("float64"):
        model = small_seq2seq(seed)
        out = greedy_decode(model, SOURCE, bos_id=BOS, max_len=5)
        numpy.testing.assert_array_equal(out, step_by_step(model, SOURCE, 5))
        assert greedy_decode(model, SOURCE, bos_id=BOS).shape == (3, 8)     # max_len defaults to block_size


def test_greedy_decode_stops_at_eos_and_pads_finished_rows():
    with backend.using("float64"):
        model = small_seq2seq(seed=3)
        full = step_by_step(model, SOURCE, 8)                               # [3, 8], never stopped
        first = {}  # token -> where it first appears in each row
        for token in set(full.ravel().tolist()) - {PAD}:
            if all(token in row for row in full):
                first[token] = [row.tolist().index(token) for row in full]
        assert first, "no token appears in every row: pick another seed"
        eos = min(first, key=lambda token: max(first[token]))              # the EOS that ends every row soonest
        ends = first[eos]
        expected = numpy.full((len(SOURCE), max(ends) + 1), PAD)
        for r, end in enumerate(ends):
            expected[r, :end + 1] = full[r, :end + 1]                      # up to and including EOS, then PAD
        assert max(ends) + 1 < full.shape[1]                               # the decoding stops early,
        assert min(ends) < max(ends)                                       # rows end at different steps

        out = greedy_decode(model, SOURCE, bos_id=BOS, eos_id=eos)
    numpy.testing.assert_array_equal(out, expected)


def test_greedy_decode_restores_the_mode():
    model = small_seq2seq(seed=0)
    model.train()
    greedy_decode(model, SOURCE, bos_id=BOS, max_len=3)
    assert all(module.training for _, module in model.named_modules())
