"""The stand-in backend: NumPy underneath, CuPy's rules on top, so a machine without a GPU can check that
every layer would run under CuPy (no host array slipped into device code, no implicit copy to the host)."""
import numpy
import pytest

from helpers import GRAD_TOL
from tinytransformer import (GELU, CrossEntropyLoss, Dropout, Embedding, FeedForward, LayerNorm,
                             LearnedPositionalEncoding, Linear, MultiHeadAttention, ReLU, ScaledDotProductAttention,
                             SinusoidalPositionalEncoding, backend, causal_mask, check_layer)


def standin(host_array):
    """Copy a host array onto the stand-in 'device' (inside ``backend.using(backend="standin")``)."""
    return backend.asarray(host_array)


# --- the rules ------------------------------------------------------------------------------------------

def test_mixing_a_host_array_into_device_arithmetic_raises():
    with backend.using(backend="standin"):
        device, host = standin(numpy.ones(3)), numpy.ones(3)
        for mix in [lambda: device + host, lambda: host + device, lambda: device @ host,
                    lambda: backend.xp.exp(host), lambda: backend.xp.where(device > 0, host, 0.0),
                    lambda: device[numpy.array([0, 1])]]:
            with pytest.raises(TypeError, match="a host NumPy array cannot be mixed with device arrays"):
                mix()


def test_implicit_conversion_to_numpy_raises():
    with backend.using(backend="standin"):
        device = standin(numpy.arange(3.0))
        for convert in [numpy.asarray, numpy.array, lambda a: numpy.ascontiguousarray(a)]:
            with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
                convert(device)


def test_explicit_copies_work():
    with backend.using(backend="standin"):
        device = standin(numpy.arange(3.0))
        host = backend.to_numpy(device)
        assert isinstance(host, numpy.ndarray)
        numpy.testing.assert_array_equal(host, [0.0, 1.0, 2.0])
        host[0] = 9.0                                        # a copy: the device array is unchanged
        assert float(device[0]) == 0.0 and float(device.sum()) == 3.0  # scalars may be read, as in CuPy
        assert isinstance(device + 1.0, backend.xp.ndarray)            # Python numbers mix fine


def test_a_layer_fed_a_host_array_fails_as_it_would_under_cupy():
    with backend.using(backend="standin"):
        layer = Linear(3, 2)
        with pytest.raises(TypeError, match="host NumPy array"):
            layer(numpy.ones((2, 3), dtype=numpy.float32))


def test_cached_causal_masks_belong_to_their_backend():
    causal_mask(3)                                            # cached for NumPy first
    with backend.using(backend="standin"):
        assert isinstance(causal_mask(3), backend.xp.ndarray)  # not NumPy's mask handed to the 'device'


# --- every layer gives NumPy's results ------------------------------------------------------------------

def host_inputs(rng):
    """Host data shared by both runs; each run copies it onto its own backend."""
    return {"x": rng.standard_normal((2, 4, 6)), "context": rng.standard_normal((2, 5, 6)),
            "q": rng.standard_normal((2, 4, 3)), "k": rng.standard_normal((2, 4, 3)),
            "v": rng.standard_normal((2, 4, 3)), "idx": numpy.array([[1, 0, 1, 4], [4, 4, 2, 0]]),
            "logits": rng.standard_normal((2, 4, 6)), "targets": numpy.array([[1, -100, 3, 0], [5, 2, -100, 1]]),
            "causal": numpy.tril(numpy.ones((4, 4), dtype=bool)),
            "padding": numpy.array([[True] * 5, [True, True, True, False, False]])[:, None, None, :],
            "random": numpy.array(rng.random((2, 4, 4)) < 0.5) | numpy.eye(4, dtype=bool)}


def fully_masked_row(mask):
    mask = mask.copy()
    mask[0, 1] = False
    return mask


# name -> (build the layer, its inputs from host_inputs(), its forward keywords from host_inputs())
CASES = {
    "Linear": (lambda rng: Linear(6, 3, rng=rng), ["x"], {}),
    "Linear without bias": (lambda rng: Linear(6, 3, bias=False, rng=rng), ["x"], {}),
    "Embedding": (lambda rng: Embedding(5, 6, rng=rng), ["idx"], {}),
    "SinusoidalPositionalEncoding": (lambda rng: SinusoidalPositionalEncoding(6), ["x"], {}),
    "LearnedPositionalEncoding": (lambda rng: LearnedPositionalEncoding(8, 6, rng=rng), ["x"], {}),
    "ScaledDotProductAttention": (lambda rng: ScaledDotProductAttention(), ["q", "k", "v"],
                                  {"mask": lambda h: fully_masked_row(h["random"])}),
    "ScaledDotProductAttention with dropout": (lambda rng: ScaledDotProductAttention(dropout=0.3, seed=1),
                                               ["q", "k", "v"], {"mask": lambda h: h["causal"]}),
    "MultiHeadAttention causal": (lambda rng: MultiHeadAttention(6, 2, rng=rng), ["x"],
                                  {"mask": lambda h: h["causal"]}),
    "MultiHeadAttention padding": (lambda rng: MultiHeadAttention(6, 3, rng=rng), ["x"],
                                   {"mask": lambda h: h["padding"][..., :4]}),
    "MultiHeadAttention cross": (lambda rng: MultiHeadAttention(6, 2, rng=rng), ["x", "context"],
                                 {"mask": lambda h: h["padding"]}),
    "LayerNorm": (lambda rng: LayerNorm(6), ["x"], {}),
    "FeedForward relu": (lambda rng: FeedForward(6, 8, activation="relu", rng=rng), ["x"], {}),
    "FeedForward gelu with dropout": (lambda rng: FeedForward(6, 8, dropout=0.2, seed=2, rng=rng), ["x"], {}),
    "ReLU": (lambda rng: ReLU(), ["x"], {}),
    "GELU": (lambda rng: GELU(), ["x"], {}),
    "Dropout": (lambda rng: Dropout(0.3, seed=0), ["x"], {}),
    "CrossEntropyLoss": (lambda rng: CrossEntropyLoss(), ["logits", "targets"], {}),
}


def forward_and_backward(backend_name, case):
    """Build the case's layer on one backend, run forward and backward, and bring everything to the host."""
    make_layer, input_names, keywords = CASES[case]
    host = host_inputs(numpy.random.default_rng(0))
    with backend.using("float64", backend=backend_name):
        layer = make_layer(numpy.random.default_rng(0))
        inputs = {name: backend.asarray(host[name]) for name in input_names}
        kwargs = {key: backend.asarray(make(host)) for key, make in keywords.items()}
        out = layer(**inputs, **kwargs)
        if backend_name == "standin":
            assert isinstance(out, backend.xp.ndarray)  # stayed on the 'device'
        grads = layer.backward(backend.randn(out.shape, rng=backend.new_host_rng(1)))
        grads = [g for g in (grads if isinstance(grads, tuple) else (grads,)) if g is not None]
        return (backend.to_numpy(out), [backend.to_numpy(g) for g in grads],
                {name: backend.to_numpy(p.grad) for name, p in layer.named_parameters()})


@pytest.mark.parametrize("case", list(CASES))
def test_layer_runs_on_the_standin_and_agrees_with_numpy(case):
    out, grads, param_grads = forward_and_backward("standin", case)
    out_np, grads_np, param_grads_np = forward_and_backward("numpy", case)
    numpy.testing.assert_allclose(out, out_np, rtol=1e-12, atol=1e-14)
    assert len(grads) == len(grads_np)
    for g, g_np in zip(grads, grads_np):
        numpy.testing.assert_allclose(g, g_np, rtol=1e-12, atol=1e-14)
    assert param_grads.keys() == param_grads_np.keys()
    for name in param_grads:
        numpy.testing.assert_allclose(param_grads[name], param_grads_np[name], rtol=1e-12, atol=1e-14)
        assert numpy.abs(param_grads[name]).max() > 0 or name == "k_proj.bias"  # a gradient really arrived


def test_gradient_check_runs_on_the_standin():
    with backend.using("float64", backend="standin"):
        layer = MultiHeadAttention(4, 2, rng=numpy.random.default_rng(0))
        x = backend.randn((1, 3, 4), rng=numpy.random.default_rng(1))
        mask = standin(numpy.tril(numpy.ones((3, 3), dtype=bool)))
        errors = check_layer(layer, {"x": x}, {"mask": mask})
    assert max(errors.values()) <= GRAD_TOL, errors


# --- backend.fuse: what cupy.fuse accepts ----------------------------------------------------------------

@backend.fuse
def _axpy(a, x, y):
    return a * x + y                                          # element-wise: what cupy.fuse compiles


@backend.fuse
def _moments(x):
    return x * 2.0, backend.xp.sqrt(x)                       # several outputs: a tuple, as cupy.fuse


def test_fuse_runs_an_element_wise_formula_on_device_arrays():
    with backend.using(backend="standin"):
        a = backend.asarray(numpy.float32(3.0))               # a number that changes: a 0-d device array
        x, y = standin(numpy.arange(4, dtype=numpy.float32)), standin(numpy.ones(4, dtype=numpy.float32))
        out = _axpy(a, x, y)
        twice, root = _moments(x)
        assert all(isinstance(r, backend.xp.ndarray) and r.dtype == numpy.float32 for r in (out, twice, root))
        numpy.testing.assert_array_equal(backend.to_numpy(out), [1.0, 4.0, 7.0, 10.0])
        numpy.testing.assert_array_equal(backend.to_numpy(root), numpy.sqrt(numpy.arange(4, dtype=numpy.float32)))


def test_fuse_refuses_host_arrays_and_python_numbers_as_arguments():
    with backend.using(backend="standin"):
        x = standin(numpy.ones(3, dtype=numpy.float32))
        with pytest.raises(TypeError, match="a host NumPy array cannot be mixed with device arrays"):
            _axpy(x, numpy.ones(3, dtype=numpy.float32), x)
        with pytest.raises(TypeError, match="Pass backend.asarray"):  # cupy.fuse would promote to float64
            _axpy(2.0, x, x)


@pytest.mark.parametrize("formula, what", [
    (lambda x: x.sum(), "method or attribute 'sum'"),
    (lambda x: backend.xp.sum(x), "not sum"),
    (lambda x: backend.xp.where(x > 0, x, 0.0), "not where"),
    (lambda x: numpy.add.reduce(x), "add.reduce"),
    (lambda x: x[0] * 2.0, "indexing"),
    (lambda x: backend.xp.exp(x, out=x), "out="),
    (lambda x: x.__iadd__(1.0), "in-place"),
], ids=["method", "reduction", "where", "ufunc_reduce", "indexing", "out", "in_place"])
def test_fuse_refuses_what_cupy_fuse_cannot_compile(formula, what):
    fused = backend.fuse(formula)
    with backend.using(backend="standin"):
        x = standin(numpy.ones(3, dtype=numpy.float32))
        with pytest.raises(TypeError, match="cupy.fuse compiles element-wise formulas only.*" + what):
            fused(x)
        numpy.testing.assert_array_equal(backend.to_numpy(x), [1.0, 1.0, 1.0])  # nothing was overwritten
