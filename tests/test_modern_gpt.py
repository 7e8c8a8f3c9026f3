"""GPT with today's choices: rotary positions, RMSNorm, SwiGLU, grouped-query attention, local attention.

1. the whole model's gradients against finite differences (float64) for combinations of the five
   choices in which every pair of them appears together, all five on, all five off;
2. grouped-query attention with RoPE against PyTorch's scaled_dot_product_attention(enable_gqa=True);
3. the KV cache: n_kv_head heads kept, the last window − 1 positions with a window; cached logits and
   greedy tokens equal the uncached ones;
4. what local attention means: a position is blind past its window in one layer, and each layer
   widens the reach by window − 1 (as a stack of convolutions widens its receptive field).
"""
import numpy
import pytest

from helpers import assert_matches_torch, to_torch
from helpers.models import assert_model_gradients, randomise_weights
from tinytransformer import backend, causal_mask
from tinytransformer.generate import generate
from tinytransformer.layers.attention import MultiHeadAttention
from tinytransformer.models import GPT, GPTConfig

MODERN = dict(positional="rope", normalization="rmsnorm", activation="swiglu", n_kv_head=2, window=3)
OFF = dict(positional="learned", normalization="layernorm", activation="gelu", n_kv_head=None, window=None)
# An orthogonal array of strength 2: in these eight rows every pair of the five choices takes all four
# combinations (on/on, on/off, off/on, off/off); then all five on.
PAIRS = ["00000", "00011", "01100", "01111", "10101", "10110", "11001", "11010", "11111"]
FIELDS = list(MODERN)


def options(bits: str) -> dict:
    return {field: (MODERN if bit == "1" else OFF)[field] for field, bit in zip(FIELDS, bits)}


def tiny_modern_gpt(**changes):
    """Vocabulary 7, context 6, two blocks of four heads of size 2; LLaMA's bias-free, untied layout."""
    config = dict(vocab_size=7, block_size=6, n_layer=2, n_head=4, n_embd=8, ffn_hidden=12, bias=False,
                  tie_weights=False, rope_theta=50.0)
    return GPT(GPTConfig(**{**config, **changes}))


@pytest.mark.parametrize("bits", PAIRS, ids=lambda b: "-".join(f for f, bit in zip(FIELDS, b) if bit == "1")
                         or "none")
def test_gradients_of_every_combination(bits):
    rng = numpy.random.default_rng(0)
    idx, targets = rng.integers(0, 7, (2, 6)), rng.integers(0, 7, (2, 6))
    with backend.using("float64"):
        # one block for the pairs (each forward of a finite difference costs a block), two for all five
        model = tiny_modern_gpt(**options(bits), n_layer=2 if bits == "11111" else 1, ffn_hidden=6)
        randomise_weights(model)
        errors = assert_model_gradients(model, lambda: model(idx, targets)[1], "GPT (modern)")
    names = set(errors)
    assert ("wpe.weight" in names) == (bits[0] == "0")                 # RoPE has no table to learn
    assert any("gate_proj" in n for n in names) == (bits[2] == "1")
    k_proj = model.blocks[0].self_attn.sublayer.k_proj.weight.data
    assert k_proj.shape == (8, 4 if bits[3] == "1" else 8)             # two K heads of size 2, or four


def test_grouped_query_attention_with_rope_matches_torch(torch):
    """Our layer against torch: its own RoPE (Hugging Face's rotate_half), then SDPA with enable_gqa."""
    F = torch.nn.functional
    rng = numpy.random.default_rng(1)
    B, T, d, h, h_kv, d_k = 2, 5, 12, 6, 2, 2
    with backend.using("float64"):
        layer = MultiHeadAttention(d, h, bias=True, rng=rng, n_kv_head=h_kv, rope_theta=30.0)
        for _, p in layer.named_parameters():
            p.data[...] = rng.standard_normal(p.data.shape) * 0.5
        x, dy = backend.randn((B, T, d), rng=rng), backend.randn((B, T, d), rng=rng)
        mask = causal_mask(T, window=3)
        y = layer(x, mask=mask)
        dx = layer.backward(dy)

    weights = {name: to_torch(torch, p.data) for name, p in layer.named_parameters()}
    x_t = to_torch(torch, x)
    inv_freq = 1.0 / (30.0 ** (torch.arange(0, d_k, 2, dtype=torch.float64) / d_k))
    angles = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    cos, sin = torch.cat((angles, angles), -1).cos(), torch.cat((angles, angles), -1).sin()

    def rope(t):
        return t * cos + torch.cat((-t[..., d_k // 2:], t[..., :d_k // 2]), -1) * sin

    def heads(t, n):
        return t.reshape(B, T, n, d_k).transpose(1, 2)

    q = rope(heads(x_t @ weights["q_proj.weight"] + weights["q_proj.bias"], h))
    k = rope(heads(x_t @ weights["k_proj.weight"] + weights["k_proj.bias"], h_kv))
    v = heads(x_t @ weights["v_proj.weight"] + weights["v_proj.bias"], h_kv)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=torch.as_tensor(mask), enable_gqa=True)
    y_t = out.transpose(1, 2).reshape(B, T, d) @ weights["out_proj.weight"] + weights["out_proj.bias"]
    y_t.backward(to_torch(torch, dy, requires_grad=False))
    assert_matches_torch(y, y_t, "MultiHeadAttention (GQA, RoPE)", "output")
    assert_matches_torch(dx, x_t.grad, "MultiHeadAttention (GQA, RoPE)", "dx")
    for name, p in layer.named_parameters():
        assert_matches_torch(p.grad, weights[name].grad, "MultiHeadAttention (GQA, RoPE)", f"d {name}")


@pytest.mark.parametrize("bits, window", [("11111", 3), ("10010", None), ("00011", 3), ("10001", 3),
                                          ("11111", 5)],
                         ids=["all", "rope-gqa", "gqa-window", "rope-window", "window-longer-than-the-prompt"])
def test_the_kv_cache_keeps_kv_heads_and_the_window_and_gives_the_same_logits(bits, window):
    rng = numpy.random.default_rng(2)
    idx = rng.integers(0, 7, (2, 6))
    with backend.using("float64"):
        model = tiny_modern_gpt(**{**options(bits), "window": window})
        randomise_weights(model)
        full, _ = model(idx)
        caches = [{} for _ in model.blocks]
        steps = [model.forward_cached(idx[:, :2], caches)]                 # a prompt of two, then one by one
        for t in range(2, 6):
            steps.append(model.forward_cached(idx[:, t:t + 1], caches))
            k = caches[0]["k"]
            assert k.shape[1] == (model.config.n_kv_head or model.config.n_head)   # only the K/V heads
            window = model.config.window
            assert k.shape[2] == (t + 1 if window is None else min(t + 1, window - 1))
    cached = numpy.concatenate(steps, axis=1)
    numpy.testing.assert_allclose(cached, full, rtol=0, atol=1e-12)


def test_greedy_tokens_are_the_same_with_and_without_the_cache():
    with backend.using("float64"):
        model = tiny_modern_gpt(**MODERN, block_size=12)
        randomise_weights(model)
        prompt = numpy.array([[1, 2, 3]])
        cached = generate(model, prompt, 8, temperature=0.0, use_cache=True)
        plain = generate(model, prompt, 8, temperature=0.0, use_cache=False)
    numpy.testing.assert_array_equal(cached, plain)


@pytest.mark.parametrize("n_layer", [1, 2, 3])
def test_each_layer_of_local_attention_reaches_window_minus_one_positions_further(n_layer):
    """Change the token d positions back: the last position's logits move only if d ≤ n_layer·(W − 1)."""
    W, T = 3, 12
    idx = numpy.random.default_rng(3).integers(0, 7, (1, T))
    with backend.using("float64"):
        model = tiny_modern_gpt(n_layer=n_layer, window=W, block_size=T, positional="rope")
        randomise_weights(model)
        last = model(idx)[0][0, -1]
        moved = []
        for d in range(1, T):
            changed = idx.copy()
            changed[0, T - 1 - d] = (changed[0, T - 1 - d] + 1) % 7
            moved.append(numpy.abs(model(changed)[0][0, -1] - last).max() > 1e-12)
    reach = n_layer * (W - 1)
    assert moved == [d <= reach for d in range(1, T)]


@pytest.mark.parametrize("field, value, message", [
    ("n_kv_head", 3, "n_kv_head 3 does not divide n_head 4"),
    ("n_kv_head", 0, "n_kv_head is 0: it must be a whole number >= 1"),
    ("window", 0, "window is 0"),
    ("positional", "alibi", "positional is 'alibi': choose one of"),
    ("normalization", "batchnorm", "normalization is 'batchnorm'"),
    ("activation", "swish", "activation is 'swish'"),
    ("rope_theta", -1.0, "rope_theta is -1.0: it must be a positive number"),
    ("norm_eps", float("nan"), "norm_eps is nan"),
    ("rope_scaling", {"factor": 8.0}, "rope_scaling is .*: it must give Llama 3's factor, low_freq_factor"),
    ("rope_scaling", {"factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0,
                      "original_max_position_embeddings": 32}, "with low_freq_factor < high_freq_factor"),
])
def test_config_refuses_nonsense(field, value, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(vocab_size=7, n_head=4, n_embd=8, **{field: value})


def test_rope_needs_an_even_head_size():
    with pytest.raises(ValueError, match="head size n_embd / n_head = 3 must be even"):
        GPTConfig(n_head=4, n_embd=12, positional="rope")


def test_a_checkpoint_of_a_modern_gpt_resumes_it(tmp_path):
    """The new fields go through a checkpoint's JSON (None as null) and rebuild the same model."""
    from tinytransformer.training.checkpoint import gpt_config_of, load_checkpoint, restore, save_checkpoint
    idx = numpy.random.default_rng(4).integers(0, 7, (2, 6))
    model = tiny_modern_gpt(**{**MODERN, "n_kv_head": 1})
    randomise_weights(model)
    save_checkpoint(tmp_path / "ckpt.npz", model=model, config={"model": model.config.to_dict()})
    checkpoint = load_checkpoint(tmp_path / "ckpt.npz")
    config = gpt_config_of(checkpoint, tmp_path / "ckpt.npz")
    assert config == model.config
    again = GPT(config)
    restore(checkpoint, again)
    numpy.testing.assert_array_equal(again(idx)[0], model(idx)[0])


def test_under_the_standin_backend_the_modern_gpt_gives_numpys_numbers():
    """The CuPy stand-in (NumPy with CuPy's rules) runs RoPE, RMSNorm, SwiGLU, GQA and the window, forward,
    backward and the KV cache, and gets NumPy's numbers exactly: the same operations in the same order."""
    idx, targets = (numpy.random.default_rng(5).integers(0, 7, (2, 6)) for _ in range(2))
    results = []
    for name in ("numpy", "standin"):
        with backend.using(backend=name, dtype="float32"):
            model = tiny_modern_gpt(**MODERN)
            logits, loss = model(backend.asarray(idx), backend.asarray(targets))
            model.backward()
            caches = [{} for _ in model.blocks]
            cached = model.forward_cached(backend.asarray(idx[:, :4]), caches)
            results.append((backend.to_numpy(logits), float(loss), backend.to_numpy(cached),
                            {n: backend.to_numpy(p.grad) for n, p in model.named_parameters()}))
    (logits, loss, cached, grads), (logits_s, loss_s, cached_s, grads_s) = results
    numpy.testing.assert_array_equal(logits_s, logits)
    numpy.testing.assert_array_equal(cached_s, cached)
    assert loss_s == loss
    for name, grad in grads.items():
        numpy.testing.assert_array_equal(grads_s[name], grad, err_msg=name)
