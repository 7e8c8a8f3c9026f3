# %% [markdown]
"""Lesson 22: The same code on a GPU with CuPy.

CuPy is NumPy's interface on an NVIDIA GPU: cupy.exp, cupy.matmul, cupy.ndarray. Every layer of
tinytransformer writes ``xp.exp(...)``, ``x @ w``, where ``xp`` is whichever module the backend points to,
so moving to the GPU changes one line:

    backend.use("cupy")          # instead of the default "numpy"

What needs care is around the layers: arrays live on the device and do not mix with host NumPy arrays
(move data with backend.asarray / backend.to_numpy), GPU work is asynchronous (time it with
backend.synchronize()), and float32 is the GPU's number format.

On a machine with CuPy and a GPU this lesson runs on the GPU. Elsewhere it runs the same steps on the
"standin" backend: NumPy on the CPU dressed up with CuPy's rules, so that everything except the speed can
be seen (and tested) without a GPU.

Run:  python lessons/22_gpu_with_cupy.py        (add --no-pause to run straight through)
"""

# %%
import statistics
import time

import numpy as np

from _lesson import Lesson
from tinytransformer.machine import one_blas_thread

from tinytransformer import AdamW, backend, relative_error
from tinytransformer.models import GPT, GPTConfig

lesson = Lesson("22 The same code on a GPU", __doc__, steps=6)

# %%
lesson.step("Choosing the backend", """
    backend.use("cupy") imports CuPy and asks CUDA for a device. Where either is missing it raises
    backend.BackendError with the reason and how to install the right CuPy wheel; a program can catch it
    and fall back. This lesson falls back to the stand-in, which raises the same errors CuPy would.""")
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

# %%
lesson.step("Nothing changes in the layers", """
    Build the same GPT twice, once per backend, and run one forward and backward on the same batch.
    Initial weights are drawn on the host with NumPy and then copied to the device, so the two models
    start identical. The stand-in runs NumPy underneath, so it must agree bit for bit; a GPU sums in
    another order than the CPU, so there float32 results agree to about 1e-6 relative.""")
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

# %%
lesson.step("Host and device arrays do not mix", f"""
    A NumPy array lives in host memory, a CuPy array in GPU memory. CuPy refuses to combine them
    (device + host raises TypeError) and refuses to turn a device array into a NumPy array silently
    (numpy.asarray(device) raises TypeError): every copy across the PCIe bus must be written out.
    backend.asarray(host) copies to the device, backend.to_numpy(device) copies back. The library's data
    pipeline (tinytransformer/data.py) builds batches on the host and moves each finished batch with one
    backend.asarray. Here on the {DEVICE} backend:""")
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
lesson.say("""
    A training loop should copy as little as possible: one batch in per step, and a loss value out only
    when it is printed. float(loss) on a GPU waits for every queued kernel, so calling it every step
    also removes the overlap of CPU and GPU work.""")

# %%
lesson.step("float32", """
    GPUs are built for 32-bit floats: an H100 does float64 at half its float32 rate, a consumer card at
    1/32 or 1/64 of it, and float32 halves the memory and the bytes moved. tinytransformer's default dtype
    is float32 (gradient checks switch to float64 on purpose). The trap: NumPy makes float64 by default,
    and backend.asarray keeps the dtype it is given; a float64 array that meets float32 weights promotes
    the whole computation to float64, silently. Ask for the dtype when moving data in.""")
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

# %%
size = (4096 if ON_GPU else 512) if lesson.quick else (8192 if ON_GPU else 1024)
lesson.step("Timing needs backend.synchronize()", f"""
    A CuPy call returns as soon as the GPU has been told what to do; the work runs later, while Python
    goes on. A timer around the call measures only the launch. backend.synchronize() waits until the GPU
    has finished everything queued: call it before starting the timer and before stopping it. (On NumPy
    and the stand-in it does nothing: the CPU finishes each call before returning.) Here: a
    {size} × {size} matrix product on {DEVICE}, timed both ways (median of 5; BLAS on one thread).""")
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

# %%
widths = [32, 64] if lesson.quick else [32, 64, 128, 256]
lesson.step("A training step, NumPy against the device", f"""
    One full training step (forward, backward, AdamW) of a 2-layer GPT with batch 8 × 64 tokens, for
    n_embd in {widths}, median of 3 after a warm-up, synchronized, NumPy's BLAS on one thread. A GPU
    pays a fixed cost per kernel launch (microseconds) and wins only when each kernel has enough work:
    at small widths NumPy can be faster. The stand-in is NumPy plus a wrapper around every call, so it is a little slower than NumPy
    and says nothing about GPU speed; it is there to check correctness.""")


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

import matplotlib.pyplot as plt  # noqa: E402

fig, (ax_step, ax_sync) = plt.subplots(1, 2, figsize=(12, 4.3), gridspec_kw={"width_ratios": [3, 2]})
for name, marker in (("numpy", "o-"), (DEVICE, "s-")):
    ax_step.plot(widths, [1000 * t for t in step_times[name]], marker, label=name)
ax_step.set_xscale("log", base=2)
ax_step.set_yscale("log")
ax_step.set(xlabel="n_embd", ylabel="ms per training step (synchronized)",
            title=f"one training step: numpy vs {DEVICE}")
ax_step.grid(alpha=0.3, which="both")
ax_step.legend()
ax_sync.bar(["timer right after\nthe call", "timer after\nsynchronize()"], [1000 * launch, 1000 * finished],
            color=["tab:gray", "tab:blue"])
ax_sync.set(ylabel="ms", title=f"{size}×{size} matmul on {DEVICE}: what the timer sees")
fig.tight_layout()
lesson.figure(fig, "22_gpu_timing")

lesson.done()
