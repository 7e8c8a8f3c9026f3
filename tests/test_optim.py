"""Tests for tinytransformer/optim.py: AdamW, clip_grad_norm, cosine_lr.

The main check runs a tiny model side by side with PyTorch (the independent oracle): the same weights,
the same data, each framework computing its own gradients, and both trajectories must agree to ~1e-12
in float64 at every step, with clipping and the learning-rate schedule in the loop.
"""
import math

import numpy as np
import pytest

from tinytransformer import backend
from tinytransformer.layers.embedding import Embedding
from tinytransformer.layers.layernorm import LayerNorm
from tinytransformer.layers.linear import Linear
from tinytransformer.module import Parameter
from tinytransformer.optim import AdamW, clip_grad_norm, cosine_lr, group_parameters

from helpers import TinyNet


def loss_and_backward(model, x, target):
    """Mean squared error, and its gradient pushed through the model (grads zeroed first)."""
    model.zero_grad()
    diff = model(x) - target                                  # [N, d_out]
    model.backward(2.0 * diff / diff.size)
    return float((diff * diff).mean())


def make_batch(seed, n=5, d_in=4, d_out=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d_in)), rng.standard_normal((n, d_out))


def train(model, optimizer, iters, start=0, max_norm=0.5):
    """A nanoGPT-style loop: schedule, backward, clip, step. Returns the losses."""
    losses = []
    for it in range(start, start + iters):
        x, target = make_batch(seed=it)
        losses.append(loss_and_backward(model, backend.asarray(x), backend.asarray(target)))
        clip_grad_norm(model.parameters(), max_norm)
        optimizer.step(lr=cosine_lr(it, lr=1e-2, min_lr=1e-3, warmup_iters=2, lr_decay_iters=6))
    return losses


# --- AdamW against PyTorch ------------------------------------------------------------------------------

def test_adamw_clip_and_schedule_match_torch_step_for_step(torch):
    lr, min_lr, warmup_iters, lr_decay_iters, max_norm = 1e-2, 1e-3, 2, 6, 2.0
    with backend.using("float64"):
        model = TinyNet()
        params = dict(model.named_parameters())

        def torch_layout(a):
            """PyTorch stores a Linear's W transposed, [out, in]; the 1-d parameters are stored alike."""
            return a.T if a.ndim == 2 else a

        torch_params = {name: torch.tensor(torch_layout(p.data).copy(), requires_grad=True)
                        for name, p in params.items()}

        def torch_forward(x):
            h = x @ torch_params["fc1.weight"].T + torch_params["fc1.bias"]
            h = torch.nn.functional.layer_norm(h, (8,), torch_params["ln.weight"], torch_params["ln.bias"],
                                               eps=1e-5)
            return h @ torch_params["fc2.weight"].T + torch_params["fc2.bias"]

        # nanoGPT's configure_optimizers: decay every parameter with dim >= 2, no others.
        decay = [p for p in torch_params.values() if p.dim() >= 2]
        no_decay = [p for p in torch_params.values() if p.dim() < 2]
        torch_opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                       {"params": no_decay, "weight_decay": 0.0}],
                                      lr=lr, betas=(0.9, 0.95), eps=1e-8)
        optimizer = AdamW(model.named_parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)

        norms = []
        for it in range(8):  # warmup (0, 1), cosine (2..5), min_lr (6, 7)
            step_lr = cosine_lr(it, lr=lr, min_lr=min_lr, warmup_iters=warmup_iters,
                                lr_decay_iters=lr_decay_iters)
            x, target = make_batch(seed=it)

            loss_and_backward(model, x, target)
            norm = clip_grad_norm(model.parameters(), max_norm)
            optimizer.step(lr=step_lr)

            torch_opt.zero_grad()
            torch_loss = ((torch_forward(torch.tensor(x)) - torch.tensor(target)) ** 2).mean()
            torch_loss.backward()
            torch_norm = torch.nn.utils.clip_grad_norm_(list(torch_params.values()), max_norm)
            for group in torch_opt.param_groups:
                group["lr"] = step_lr
            torch_opt.step()

            assert norm == pytest.approx(float(torch_norm), rel=1e-12)
            norms.append(norm)
            for name, p in params.items():
                expected = torch_layout(torch_params[name].detach().numpy())
                np.testing.assert_allclose(p.data, expected, rtol=0, atol=1e-12,
                                           err_msg=f"{name} after step {it}")
        # The comparison covered steps with and without clipping.
        assert max(norms) > max_norm > min(norms)


# --- AdamW's own behaviour ------------------------------------------------------------------------------

def test_adamw_minimises_a_quadratic():
    with backend.using("float64"):
        rng = np.random.default_rng(1)
        target = backend.asarray(rng.standard_normal((3, 4)))
        theta = Parameter(backend.asarray(np.zeros((3, 4))))
        optimizer = AdamW([("theta", theta)], weight_decay=0.0)
        loss = None
        n_iters = 300
        for it in range(n_iters):
            diff = theta.data - target
            loss = float((diff * diff).sum())                    # L = Σ (θ − target)²
            theta.grad[...] = 2.0 * diff                         # dL/dθ
            optimizer.step(lr=cosine_lr(it, lr=0.1, min_lr=0.0, warmup_iters=10, lr_decay_iters=n_iters))
        first_loss = float((target * target).sum())
        assert first_loss > 1.0
        assert loss < 1e-8


def test_weight_decay_touches_only_matrices():
    with backend.using("float64"):
        rng = np.random.default_rng(2)
        layers = {"fc": Linear(3, 4, rng=rng), "ln": LayerNorm(4), "emb": Embedding(5, 4, rng=rng)}
        named = [(f"{key}.{attr}", getattr(layer, attr)) for key, layer in layers.items()
                 for attr in ("weight", "bias") if getattr(layer, attr, None) is not None]
        for _, p in named:  # make every 1-d parameter non-zero so that decay would show on it
            p.data[...] = backend.asarray(rng.standard_normal(p.data.shape))
        before = {name: p.data.copy() for name, p in named}
        optimizer = AdamW(named, lr=0.1, weight_decay=0.5)
        optimizer.step()  # all gradients are 0: the Adam step is 0, only weight decay can move anything
        for name, p in named:
            if p.data.ndim >= 2:
                np.testing.assert_allclose(p.data, before[name] * (1 - 0.1 * 0.5), rtol=1e-15, atol=0,
                                           err_msg=name)
            else:
                np.testing.assert_array_equal(p.data, before[name], err_msg=name)
        assert sorted(name for name, _ in named if optimizer.decays(name)) == ["emb.weight", "fc.weight"]


def test_step_updates_in_place_and_keeps_dtype():
    model = TinyNet()  # float32, the training dtype
    optimizer = AdamW(model.named_parameters())
    arrays = {name: p.data for name, p in model.named_parameters()}
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    x, target = make_batch(seed=0)
    loss_and_backward(model, x.astype(np.float32), target.astype(np.float32))
    optimizer.step()
    for name, p in model.named_parameters():
        assert p.data is arrays[name], f"{name} was reallocated"
        assert not np.array_equal(p.data, before[name]), f"{name} did not move"
        assert p.data.dtype == np.float32
        assert optimizer.m[name].dtype == np.float32 and optimizer.v[name].dtype == np.float32


def test_lr_passed_to_step_overrides_and_is_remembered():
    theta = Parameter(np.ones(2))
    optimizer = AdamW([("theta", theta)], lr=1.0, weight_decay=0.0)
    theta.grad[...] = 1.0
    optimizer.step(lr=0.25)
    # The first Adam step moves each coordinate by lr·g/(|g| + eps) ≈ lr.
    np.testing.assert_allclose(theta.data, 1.0 - 0.25, rtol=1e-7)
    assert optimizer.lr == 0.25


def test_adamw_rejects_plain_parameters_with_a_hint():
    with pytest.raises(TypeError, match="named_parameters"):
        AdamW(TinyNet().parameters())


def test_adamw_refuses_a_parameter_listed_twice():
    theta = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="'again' is the same Parameter as 'theta'"):
        AdamW([("theta", theta), ("again", theta)])


def test_state_dict_round_trip_continues_the_same_trajectory():
    with backend.using("float64"):
        straight = TinyNet()
        straight_opt = AdamW(straight.named_parameters(), weight_decay=0.1)
        straight_losses = train(straight, straight_opt, 6)

        first = TinyNet()
        first_opt = AdamW(first.named_parameters(), weight_decay=0.1)
        losses = train(first, first_opt, 3)
        model_state, optim_state = first.state_dict(), first_opt.state_dict()
        assert all(isinstance(a, np.ndarray) for a in optim_state["m"].values())
        assert optim_state["step"] == 3

        second = TinyNet(seed=99)  # other initial weights: the loaded state must replace them
        second_opt = AdamW(second.named_parameters(), lr=0.5, betas=(0.5, 0.5), weight_decay=0.0)
        second.load_state_dict(model_state)
        second_opt.load_state_dict(optim_state)
        losses += train(second, second_opt, 3, start=3)

        assert losses == straight_losses
        for (name, p), (_, q) in zip(second.named_parameters(), straight.named_parameters()):
            np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_state_dict_is_a_copy():
    theta = Parameter(np.ones(2))
    optimizer = AdamW([("theta", theta)])
    theta.grad[...] = 1.0
    optimizer.step()
    state = optimizer.state_dict()
    state["m"]["theta"][...] = 123.0
    assert not np.array_equal(optimizer.m["theta"], state["m"]["theta"])


def test_load_state_dict_names_the_mismatch():
    optimizer = AdamW(TinyNet().named_parameters())
    other = AdamW(TinyNet(d_hidden=6).named_parameters()).state_dict()
    with pytest.raises(ValueError, match=r"fc1\.weight.*shape"):
        optimizer.load_state_dict(other)
    renamed = optimizer.state_dict()
    renamed["m"]["extra.weight"] = renamed["m"].pop("fc1.weight")
    with pytest.raises(ValueError, match=r"missing \['fc1\.weight'\].*unexpected \['extra\.weight'\]"):
        optimizer.load_state_dict(renamed)


# --- the grouped update over flat arrays ----------------------------------------------------------------

def shaped_parameters(seed, dtype):
    """Parameters of several sizes (matrices, which decay, and vectors, which do not); their gradients are
    zeros until ``give_gradients``."""
    rng = np.random.default_rng(seed)
    named = [(f"p{i}", Parameter(rng.standard_normal(shape).astype(dtype)))
             for i, shape in enumerate([(7, 5), (5,), (40, 3), (3,), (2, 3, 4), (9,), (6, 6)])]
    return named


def give_gradients(named, seed):
    rng = np.random.default_rng(seed)
    for _, p in named:
        p.grad[...] = rng.standard_normal(p.shape)


def every_other(update, items, size):
    """A ``spread`` that runs the items in two shares, the second share first (as a worker might)."""
    update(items[1::2])
    update(items[::2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spread", [None, every_other])
def test_grouped_update_equals_the_plain_one_bit_for_bit(dtype, spread, monkeypatch):
    """Groups of about 30 numbers: some hold several parameters, one a parameter of 120."""
    monkeypatch.setattr(AdamW, "GROUP_SIZE", 30)
    models = [shaped_parameters(seed=0, dtype=dtype) for _ in range(2)]
    grouped, plain = (AdamW(named, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1) for named in models)
    plain.grouped = False
    assert len(grouped.groups) > 2 and any(len(names) > 1 for _, _, names in grouped.groups)
    for step in range(4):
        for named, optimizer in zip(models, (grouped, plain)):
            give_gradients(named, seed=step)
            optimizer.step(lr=1e-2 / (step + 1), spread=spread)
    for (name, p), (_, q) in zip(*models):
        assert p.data.dtype == dtype
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
        np.testing.assert_array_equal(grouped.m[name], plain.m[name], err_msg=name)
        np.testing.assert_array_equal(grouped.v[name], plain.v[name], err_msg=name)


def test_group_parameters_covers_every_parameter_once_in_order():
    named = shaped_parameters(seed=0, dtype=np.float32)
    optimizer = AdamW(named)
    groups = group_parameters(optimizer.places, 30)
    assert [name for _, _, names in groups for name in names] == [name for name, _ in named]
    assert groups[0][0] == 0 and groups[-1][1] == sum(p.data.size for _, p in named)
    for (_, stop, _), (start, _, _) in zip(groups, groups[1:]):
        assert stop == start                                  # end to end, no gap
    for start, stop, names in groups[:-1]:
        assert stop - start >= 30                             # only the last may be smaller
        assert optimizer.places[names[-1]].start - start < 30  # it closed at the first parameter past 30
    assert ("p0",) in [names for _, _, names in groups]       # 35 numbers: a group of its own


def test_gradients_move_into_the_flat_array_with_their_values():
    named = shaped_parameters(seed=0, dtype=np.float32)
    give_gradients(named, seed=1)
    before = {name: p.grad.copy() for name, p in named}
    optimizer = AdamW(named)
    for name, p in named:
        assert np.shares_memory(p.grad, optimizer.grad), name
        np.testing.assert_array_equal(p.grad, before[name], err_msg=name)
        np.testing.assert_array_equal(optimizer.grad[optimizer.places[name]], before[name].ravel())
    optimizer.zero_grad()
    assert not optimizer.grad.any() and all(not p.grad.any() for _, p in named)


def test_a_gradient_set_to_a_new_array_is_taken_back():
    """Code that assigns p.grad = ... (not +=) leaves the flat array behind: the step must use the new
    values, and point p.grad back at its place."""
    models = [shaped_parameters(seed=0, dtype=np.float64) for _ in range(2)]
    grouped, plain = (AdamW(named, weight_decay=0.1) for named in models)
    plain.grouped = False
    for named in models:
        give_gradients(named, seed=2)
        named[0][1].grad = np.full((7, 5), 3.0)
    grouped.step()
    plain.step()
    for (name, p), (_, q) in zip(*models):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert np.shares_memory(models[0][0][1].grad, grouped.grad)


def test_loading_a_state_keeps_the_moments_in_the_flat_arrays():
    named = shaped_parameters(seed=0, dtype=np.float32)
    optimizer = AdamW(named)
    give_gradients(named, seed=3)
    optimizer.step()
    state = optimizer.state_dict()
    fresh = AdamW(shaped_parameters(seed=1, dtype=np.float32))
    fresh.load_state_dict(state)
    for name, _ in named:
        assert np.shares_memory(fresh.m[name], fresh.flat_m) and np.shares_memory(fresh.v[name], fresh.flat_v)
        np.testing.assert_array_equal(fresh.m[name], state["m"][name], err_msg=name)
        np.testing.assert_array_equal(fresh.v[name], state["v"][name], err_msg=name)


# --- clip_grad_norm -------------------------------------------------------------------------------------

def random_grads(seed, scale):
    rng = np.random.default_rng(seed)
    params = [Parameter(np.zeros(shape)) for shape in [(3, 4), (4,), (2, 2, 2)]]
    for p in params:
        p.grad[...] = scale * rng.standard_normal(p.shape)
    return params


def global_norm(params):
    return float(np.linalg.norm(np.concatenate([backend.to_numpy(p.grad).ravel() for p in params])))


def test_clip_returns_the_true_norm_and_clips_to_max_norm():
    params = random_grads(seed=3, scale=10.0)
    original = [p.grad.copy() for p in params]
    true_norm = global_norm(params)
    assert true_norm > 1.0

    norm = clip_grad_norm(params, max_norm=1.0)

    assert norm == pytest.approx(true_norm, rel=1e-12)
    assert abs(global_norm(params) - 1.0) < 1e-6
    # One factor for all gradients: the direction is kept.
    factor = params[0].grad[0, 0] / original[0][0, 0]
    for p, g in zip(params, original):
        np.testing.assert_allclose(p.grad, factor * g, rtol=1e-12)


def test_clip_leaves_small_gradients_alone():
    params = random_grads(seed=4, scale=0.01)
    original = [p.grad.copy() for p in params]
    norm = clip_grad_norm(params, max_norm=1.0)
    assert norm == pytest.approx(global_norm(params), rel=1e-12)
    for p, g in zip(params, original):
        np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_reports_nan_or_inf_gradients(bad):
    params = random_grads(seed=5, scale=1.0)
    params[1].grad[2] = bad
    norm = clip_grad_norm(params, max_norm=1.0)
    assert isinstance(norm, float)
    assert not math.isfinite(norm)


# --- cosine_lr ------------------------------------------------------------------------------------------

SCHEDULE = dict(lr=6e-4, min_lr=6e-5, warmup_iters=10, lr_decay_iters=100)


def test_warmup_rises_linearly_to_lr():
    warm = np.array([cosine_lr(it, **SCHEDULE) for it in range(SCHEDULE["warmup_iters"] + 1)])
    steps = np.diff(warm)
    assert np.all(steps > 0)
    np.testing.assert_allclose(steps, steps[0], rtol=1e-12)        # equal steps: a straight line
    np.testing.assert_allclose(warm[0], steps[0], rtol=1e-12)      # ... that starts from 0 at it = -1
    assert warm[-1] == SCHEDULE["lr"]                              # and reaches lr when warmup ends


def test_cosine_decays_monotonically_to_min_lr():
    after = [cosine_lr(it, **SCHEDULE) for it in range(SCHEDULE["warmup_iters"],
                                                           SCHEDULE["lr_decay_iters"] + 1)]
    assert all(a > b for a, b in zip(after, after[1:]))
    assert after[-1] == pytest.approx(SCHEDULE["min_lr"], rel=1e-12)
    middle = (SCHEDULE["warmup_iters"] + SCHEDULE["lr_decay_iters"]) // 2
    assert cosine_lr(middle, **SCHEDULE) == pytest.approx((SCHEDULE["lr"] + SCHEDULE["min_lr"]) / 2,
                                                          rel=1e-12)
    assert cosine_lr(SCHEDULE["lr_decay_iters"] + 1, **SCHEDULE) == SCHEDULE["min_lr"]
    assert cosine_lr(10 * SCHEDULE["lr_decay_iters"], **SCHEDULE) == SCHEDULE["min_lr"]


def test_schedule_without_warmup_starts_at_lr():
    assert cosine_lr(0, lr=1.0, min_lr=0.1, warmup_iters=0, lr_decay_iters=10) == 1.0


# --- the stand-in for CuPy ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_runs_under_the_standin_backend_with_the_same_numbers(dtype):
    """On the stand-in (as on CuPy) AdamW takes its fused path, adamw_formula; it must give the bits of
    the in-place NumPy path, update the parameters in place and keep their dtype."""
    with backend.using(dtype):
        host = TinyNet()
        host_opt = AdamW(host.named_parameters(), weight_decay=0.1)
        host_losses = train(host, host_opt, 4)
        with backend.using(backend="standin"):
            device = TinyNet()
            device_opt = AdamW(device.named_parameters(), weight_decay=0.1)
            arrays = {name: p.data for name, p in device.named_parameters()}
            device_losses = train(device, device_opt, 2)
            assert all(p.data is arrays[name] for name, p in device.named_parameters())
            assert all(m.dtype == v.dtype == np.dtype(dtype) for m, v in
                       zip(device_opt.m.values(), device_opt.v.values()))
            state = device_opt.state_dict()                       # host copies of device arrays
            assert all(isinstance(a, np.ndarray) for a in state["v"].values())
            device_opt.load_state_dict(state)                     # and back onto the device
            device_losses += train(device, device_opt, 2, start=2)
            for name, p in device.named_parameters():
                assert isinstance(p.data, backend.xp.ndarray), name
                assert isinstance(device_opt.m[name], backend.xp.ndarray), name
            device_params = {name: backend.to_numpy(p.data) for name, p in device.named_parameters()}
    assert device_losses == host_losses
    for name, p in host.named_parameters():
        np.testing.assert_array_equal(device_params[name], p.data, err_msg=name)


def test_clip_under_the_standin_backend():
    params = random_grads(seed=6, scale=10.0)
    true_norm = global_norm(params)
    with backend.using(backend="standin"):
        device_params = [Parameter(backend.asarray(p.data)) for p in params]
        for p, q in zip(device_params, params):
            p.grad[...] = backend.asarray(q.grad)
        norm = clip_grad_norm(device_params, max_norm=1.0)
        assert isinstance(norm, float)
        assert norm == pytest.approx(true_norm, rel=1e-12)
        assert abs(global_norm(device_params) - 1.0) < 1e-6
