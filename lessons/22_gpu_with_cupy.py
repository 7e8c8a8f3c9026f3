# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 22: the same code on a GPU with CuPy
#
# CuPy is NumPy's interface on an NVIDIA GPU: `cupy.exp`, `cupy.matmul`, `cupy.ndarray`. Every layer of
# tinytransformer writes `xp.exp(...)`, `x @ w`, where `xp` is whichever module the backend points to. So
# moving to the GPU changes one line:
#
# ```
# backend.use("cupy")          # instead of the default "numpy"
# ```
#
# What needs care is around the layers:
#
# - arrays live on the device and do not mix with host NumPy arrays (move data with `backend.asarray`
#   and `backend.to_numpy`);
# - GPU work is asynchronous (time it with `backend.synchronize()`);
# - float32 is the GPU's number format.
#
# On a machine with CuPy and a GPU this lesson runs on the GPU. Elsewhere it runs the same steps on the
# "standin" backend: NumPy on the CPU dressed up with CuPy's rules. Everything except the speed can be
# seen (and tested) without a GPU.
#
# Run: `python lessons/22_gpu_with_cupy.py` (add `--no-pause` to run straight through).

# %%
import statistics
import time

import numpy as np

from _lesson import Lesson
from _plots import lesson22 as plots
from tinytransformer.machine import one_blas_thread

from tinytransformer import AdamW, backend, relative_error
from tinytransformer.models import GPT, GPTConfig

lesson = Lesson("22 The same code on a GPU", steps=6)

# %% [markdown]
# ## Choosing the backend
#
# What happens when we ask for the GPU? `backend.use("cupy")` imports CuPy and asks CUDA for a device.
#
# - Where either is missing, it raises `backend.BackendError`, with the reason and how to install the
#   right CuPy wheel.
# - A program can catch it and fall back. This lesson falls back to the stand-in, which raises the same
#   errors CuPy would.

# %%
lesson.step("Choosing the backend")
try:
    backend.use("cupy")
    DEVICE = "cupy"
    import cupy
    gpu_name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    gpu_name = gpu_name.decode() if isinstance(gpu_name, bytes) else gpu_name
    print(f"  CuPy {cupy.__version__} on {gpu_name}: the GPU part of this lesson runs")
except backend.BackendError as err:
    DEVICE = "standin"
    print(f"  backend.use('cupy') raised BackendError:\n    {err}")
    print("  -> no GPU here: the lesson runs on the 'standin' backend (CPU, CuPy's rules)")
    lesson.check("the error says how to install CuPy", "pip install cupy" in str(err))
finally:
    backend.use("numpy")
ON_GPU = DEVICE == "cupy"

# %% [markdown]
# ## Nothing changes in the layers
#
# Does the same model give the same numbers? Build one GPT per backend and run one forward and backward
# on the same batch.
#
# - The initial weights are drawn on the host with NumPy, then copied to the device: the two models
#   start identical.
# - The stand-in runs NumPy underneath, so it must agree **bit for bit**.
# - A GPU sums in another order than the CPU, so there float32 results agree to about $10^{-6}$
#   relative (the check allows $10^{-4}$).

# %%
lesson.step("Nothing changes in the layers")
config = GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=64, seed=0)
host_ids = np.random.default_rng(0).integers(0, 65, size=(4, 33))          # a batch of token ids, on the host


def one_step(backend_name):
    """Forward and backward of a fresh GPT on the given backend; everything returned is on the host."""
    with backend.using("float32", backend=backend_name):
        model = GPT(config)
        x = backend.asarray(host_ids[:, :-1])                              # host -> device, [B, T]
        y = backend.asarray(host_ids[:, 1:])
        logits, loss = model(x, y)
        model.backward()
        return (backend.to_numpy(logits), float(loss), str(logits.dtype), type(logits).__module__,
                {name: backend.to_numpy(p.grad) for name, p in model.named_parameters()})


cpu, dev = one_step("numpy"), one_step(DEVICE)
print(f"  numpy:   logits are {cpu[3]}.ndarray {cpu[2]}, loss {cpu[1]:.6f}")
print(f"  {DEVICE}: logits are {dev[3]} arrays ({dev[2]}), loss {dev[1]:.6f}")
errors = {"logits": relative_error(dev[0], cpu[0])}
errors.update({name: relative_error(dev[4][name], cpu[4][name]) for name in cpu[4]})
worst = max(errors, key=errors.get)
print(f"  {len(errors)} arrays compared (logits and every parameter's gradient); largest relative "
      f"difference {errors[worst]:.1e} ({worst})")
if ON_GPU:
    lesson.check("the GPU gives NumPy's logits and gradients to float32 accuracy (relative error < 1e-4)",
                 errors[worst] < 1e-4, f"{errors[worst]:.1e}")
else:
    lesson.check("the stand-in gives exactly NumPy's logits, loss and gradients",
                 errors[worst] == 0 and dev[1] == cpu[1])
lesson.check("the results stay float32 on both", cpu[2] == dev[2] == "float32")

# %% [markdown]
# ## Host and device arrays do not mix
#
# A NumPy array lives in host memory, a CuPy array in GPU memory. CuPy refuses to cross between them
# silently:
#
# - `device + host` raises `TypeError`;
# - `numpy.asarray(device)` raises `TypeError`.
#
# Every copy across the PCIe bus must be written out: `backend.asarray(host)` copies to the device,
# `backend.to_numpy(device)` copies back. The library's data pipeline (`tinytransformer/data.py`) builds
# batches on the host and moves each finished batch with one `backend.asarray`.
#
# Below, on the device backend of this machine (`cupy`, or the stand-in):

# %%
lesson.step("Host and device arrays do not mix")
print(f"  backend: {DEVICE}")
with backend.using(backend=DEVICE):
    device_array = backend.asarray(np.arange(4.0))                          # host -> device
    host_array = np.ones(4)
    try:
        device_array + host_array
        mixed = None
    except TypeError as err:
        mixed = str(err)
    try:
        np.asarray(device_array)
        implicit = None
    except TypeError as err:
        implicit = str(err)
    back = backend.to_numpy(device_array * 2)                              # device -> host, explicitly
    total = float((device_array * 2).sum())                                # one number to the host: allowed
print(f"  device + host        -> TypeError: {mixed}")
print(f"  numpy.asarray(device) -> TypeError: {implicit}")
print(f"  backend.to_numpy(device * 2) -> {type(back).__module__}.{type(back).__name__} {back}")
print(f"  float((device * 2).sum()) -> {total} (a single number may be copied; it waits for the GPU)")
lesson.check("mixing a host array into device arithmetic raises TypeError", mixed is not None)
lesson.check("implicit conversion of a device array to NumPy raises TypeError", implicit is not None)
lesson.check("backend.to_numpy copies explicitly and gives a NumPy array with the right values",
             isinstance(back, np.ndarray) and (back == np.arange(4.0) * 2).all())

# %% [markdown]
# So a training loop should copy as little as possible: one batch in per step, and a loss value out
# only when it is printed.
#
# Why not `float(loss)` every step? On a GPU it waits for every queued kernel, which also removes the
# overlap of CPU and GPU work.

# %% [markdown]
# ## float32
#
# Why float32? GPUs are built for 32-bit floats:
#
# - an H100 does float64 at half its float32 rate, a consumer card at 1/32 or 1/64 of it;
# - float32 halves the memory and the bytes moved.
#
# tinytransformer's default dtype is float32 (gradient checks switch to float64 on purpose).
#
# The trap: NumPy makes float64 by default, and `backend.asarray` keeps the dtype it is given. A float64
# array that meets float32 weights promotes the whole computation to float64, silently. Ask for the
# dtype when moving data in: `backend.asarray(x, dtype=backend.default_dtype())`.

# %%
lesson.step("float32")
with backend.using("float32", backend=DEVICE):
    model = GPT(config)
    weights = model.wte.weight.data                                        # float32, on the device
    host_noise = np.random.default_rng(1).standard_normal(weights.shape)   # float64: NumPy's default
    careless = backend.asarray(host_noise)
    careful = backend.asarray(host_noise, dtype=backend.default_dtype())
    print(f"  parameters: {weights.dtype};  backend.asarray(float64 host array): {careless.dtype};  "
          f"with dtype=backend.default_dtype(): {careful.dtype}")
    print(f"  weights + careless -> {(weights + careless).dtype};  "
          f"weights + careful -> {(weights + careful).dtype}")
    lesson.check("every parameter of the model is float32",
                 all(p.data.dtype == np.float32 for p in model.parameters()))
    lesson.check("a float64 array promotes float32 weights to float64; asking for the dtype avoids it",
                 (weights + careless).dtype == np.float64 and (weights + careful).dtype == np.float32)

# %% [markdown]
# ## Timing needs backend.synchronize()
#
# What does a timer around a CuPy call measure? Only the launch. The call returns as soon as the GPU has
# been told what to do; the work runs later, while Python goes on.
#
# `backend.synchronize()` waits until the GPU has finished everything queued. Call it twice:
#
# 1. before starting the timer;
# 2. before stopping it.
#
# On NumPy and the stand-in it does nothing: the CPU finishes each call before returning.
#
# Below: one square matrix product, timed both ways (median of 5, BLAS on one thread).

# %%
lesson.step("Timing needs backend.synchronize()")
size = (4096 if ON_GPU else 512) if lesson.quick else (8192 if ON_GPU else 1024)
print(f"  a {size} × {size} matrix product on {DEVICE}")
launches, finishes = [], []
with backend.using("float32", backend=DEVICE), one_blas_thread():
    a = backend.randn((size, size), rng=backend.new_host_rng(2))
    a @ a                                                       # warm up (on a GPU: library handles, kernels)
    for _ in range(5):                                          # the median of 5 is what a busy machine allows
        backend.synchronize()
        t0 = time.perf_counter()
        a @ a
        launches.append(time.perf_counter() - t0)                          # without synchronize
        backend.synchronize()
        finishes.append(time.perf_counter() - t0)                          # with synchronize
launch, finished = statistics.median(launches), statistics.median(finishes)
print(f"  timer stopped right after the call: {1000 * launch:8.3f} ms")
print(f"  timer stopped after synchronize():  {1000 * finished:8.3f} ms")
print(f"  ({2 * size ** 3 / finished / 1e12:.2f} TFLOP/s)")
if ON_GPU:
    lesson.check("without synchronize the timer misses most of the work", launch < 0.5 * finished,
                 f"{1000 * launch:.3f} ms of {1000 * finished:.3f} ms")
else:
    print("  (on the CPU the two agree: there is nothing in flight to wait for)")

# %% [markdown]
# ## A training step, NumPy against the device
#
# When does the GPU win? Time one full training step (forward, backward, AdamW) of a 2-layer GPT, batch
# 8 × 64 tokens, at a few widths `n_embd`: median of 3 after a warm-up, synchronized, NumPy's BLAS on one
# thread.
#
# - A GPU pays a fixed cost per kernel launch (microseconds). It wins only when each kernel has enough
#   work: at small widths NumPy can be faster.
# - The stand-in is NumPy plus a wrapper around every call: slower than NumPy (every operation pays for
#   the wrapper), and it says nothing about GPU speed. It is there to check correctness.

# %%
lesson.step("A training step, NumPy against the device")
widths = [32, 64] if lesson.quick else [32, 64, 128, 256]


def step_time(backend_name, width):
    with backend.using("float32", backend=backend_name):
        model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=width, seed=0))
        optimizer = AdamW(model.named_parameters(), lr=1e-3)
        ids = np.random.default_rng(0).integers(0, 65, size=(8, 65))
        x, y = backend.asarray(ids[:, :-1]), backend.asarray(ids[:, 1:])

        def train_step():
            model.zero_grad()
            model(x, y)
            model.backward()
            optimizer.step()

        return lesson.median_time(train_step, repeat=3, synchronize=backend.synchronize)


with one_blas_thread():
    step_times = {name: [step_time(name, w) for w in widths] for name in ("numpy", DEVICE)}
for i, w in enumerate(widths):
    print(f"  n_embd {w:>4}: numpy {1000 * step_times['numpy'][i]:7.1f} ms, {DEVICE} "
          f"{1000 * step_times[DEVICE][i]:7.1f} ms")
lesson.figure(plots.step_times_and_sync(widths, step_times, DEVICE, launch, finished, size), "22_gpu_timing")

# %%
lesson.done()
