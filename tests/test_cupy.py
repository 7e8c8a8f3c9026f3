"""The real GPU backend: the same layers under CuPy give NumPy's results to float32 accuracy.

These tests run only where CuPy is installed and sees a CUDA GPU; everywhere else they are skipped (the
stand-in backend in test_standin.py checks the CuPy rules without a GPU).
"""
import numpy
import pytest

from tinytransformer import CrossEntropyLoss, Embedding, LayerNorm, MultiHeadAttention, backend, causal_mask


def gpu_unavailable_reason():
    try:
        import cupy
    except Exception as err:  # ImportError, or a broken install
        return f"CuPy is not installed ({type(err).__name__})"
    try:
        n_gpus = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # no driver, no device
        return f"CuPy cannot reach a GPU ({type(err).__name__})"
    return None if n_gpus > 0 else "no CUDA GPU is visible"


REASON = gpu_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"needs CuPy and a GPU: {REASON}")

# float32 keeps ~7 digits; GPU kernels sum in another order than NumPy, so results agree to a few ulps
# of the largest values involved.
RTOL, ATOL = 1e-4, 1e-5


def forward_and_backward(backend_name, make_layer, host_inputs, forward_kwargs=None):
    with backend.using("float32", backend=backend_name):
        layer = make_layer(numpy.random.default_rng(0))
        inputs = {name: backend.asarray(value) for name, value in host_inputs.items()}
        kwargs = {name: (None if value is None else backend.asarray(value))
                  for name, value in (forward_kwargs or {}).items()}
        out = layer(**inputs, **kwargs)
        grads = layer.backward(backend.randn(out.shape, rng=backend.new_host_rng(1)))
        grads = [g for g in (grads if isinstance(grads, tuple) else (grads,)) if g is not None]
        if backend_name == "cupy":
            backend.synchronize()
        return (backend.to_numpy(out), [backend.to_numpy(g) for g in grads],
                {name: backend.to_numpy(p.grad) for name, p in layer.named_parameters()})


def assert_cupy_matches_numpy(make_layer, host_inputs, forward_kwargs=None):
    on_gpu = forward_and_backward("cupy", make_layer, host_inputs, forward_kwargs)
    on_cpu = forward_and_backward("numpy", make_layer, host_inputs, forward_kwargs)
    numpy.testing.assert_allclose(on_gpu[0], on_cpu[0], rtol=RTOL, atol=ATOL, err_msg="output")
    assert len(on_gpu[1]) == len(on_cpu[1])
    for gpu_grad, cpu_grad in zip(on_gpu[1], on_cpu[1]):
        numpy.testing.assert_allclose(gpu_grad, cpu_grad, rtol=RTOL, atol=ATOL, err_msg="input gradient")
    for name in on_cpu[2]:
        numpy.testing.assert_allclose(on_gpu[2][name], on_cpu[2][name], rtol=RTOL, atol=ATOL, err_msg=name)


RNG = numpy.random.default_rng(0)
X = RNG.standard_normal((2, 5, 8)).astype(numpy.float32)
CONTEXT = RNG.standard_normal((2, 7, 8)).astype(numpy.float32)


def test_cupy_backend_is_active():
    with backend.using(backend="cupy"):
        import cupy
        assert backend.is_gpu() and isinstance(backend.xp.zeros(2), cupy.ndarray)


@pytest.mark.parametrize("cross", [False, True])
def test_multi_head_attention(cross):
    inputs = {"x": X, "context": CONTEXT} if cross else {"x": X}
    mask = None if cross else numpy.tril(numpy.ones((5, 5), dtype=bool))
    assert_cupy_matches_numpy(lambda rng: MultiHeadAttention(8, 2, rng=rng), inputs, {"mask": mask})


def test_layer_norm():
    assert_cupy_matches_numpy(lambda rng: LayerNorm(8), {"x": X})


def test_embedding_with_repeated_ids():
    idx = numpy.array([[1, 3, 1, 1], [0, 3, 2, 1]])
    assert_cupy_matches_numpy(lambda rng: Embedding(4, 8, rng=rng), {"idx": idx})


def test_cross_entropy_loss_with_ignored_targets():
    targets = numpy.array([[1, -100, 7, 0, 2], [3, 3, -100, 5, 6]])
    assert_cupy_matches_numpy(lambda rng: CrossEntropyLoss(), {"logits": X, "targets": targets})


def test_causal_mask_is_built_on_the_device():
    with backend.using(backend="cupy"):
        import cupy
        assert isinstance(causal_mask(3), cupy.ndarray)


# --- the fused formulas (backend.fuse -> cupy.fuse) against NumPy's in-place paths --------------------------

def test_gelu_fused_kernels_match_numpy_and_stay_float32():
    from tinytransformer import GELU
    assert_cupy_matches_numpy(lambda rng: GELU(), {"x": 3 * X})
    with backend.using("float32", backend="cupy"):
        layer = GELU()
        y = layer(backend.asarray(X))
        assert y.dtype == numpy.float32 and layer.backward(y).dtype == numpy.float32


def test_adamw_fused_step_matches_numpy_and_stays_float32():
    """Both backends get the same gradients (copied from the host), so only the update itself is compared."""
    from tinytransformer import AdamW, Parameter
    rng = numpy.random.default_rng(2)
    shapes = {"weight": (6, 5), "bias": (5,)}
    start = {name: rng.standard_normal(shape).astype(numpy.float32) for name, shape in shapes.items()}
    grads = [{name: rng.standard_normal(shape).astype(numpy.float32) for name, shape in shapes.items()}
             for _ in range(3)]
    results = {}
    for name in ("cupy", "numpy"):
        with backend.using("float32", backend=name):
            params = {k: Parameter(backend.asarray(v)) for k, v in start.items()}
            optimizer = AdamW(list(params.items()), lr=1e-2, weight_decay=0.1)
            for step_grads in grads:
                for k, p in params.items():
                    p.grad[...] = backend.asarray(step_grads[k])
                optimizer.step()
            assert all(p.data.dtype == optimizer.m[k].dtype == optimizer.v[k].dtype == numpy.float32
                       for k, p in params.items())
            results[name] = {k: backend.to_numpy(p.data) for k, p in params.items()}
    for k in shapes:
        numpy.testing.assert_allclose(results["cupy"][k], results["numpy"][k], rtol=RTOL, atol=ATOL, err_msg=k)
