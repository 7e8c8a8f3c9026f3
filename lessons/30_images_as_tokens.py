# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 30: images as tokens: the Vision Transformer
#
# A Transformer block never sees characters: it sees a set of vectors, one per token. Anything that can
# be cut into pieces and turned into vectors can go in. The Vision Transformer (ViT, "An Image is Worth
# 16x16 Words", 2020) cuts an image into square **patches** and treats each patch as a token.
#
# - An image becomes a sequence of flattened patches; a Linear layer embeds each one, and that Linear
#   layer is a convolution with stride $p$.
# - We build a small ViT from the library's layers (Linear, the encoder block, LayerNorm,
#   cross-entropy, AdamW) and train it to name shapes.
# - Without position embeddings it sees a bag of patches: shuffling them changes nothing, to the last
#   digit. So on a task where only the order of the patches tells the answer, it stays at chance.
#
# Run: `python lessons/30_images_as_tokens.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson30 as plots

from tinytransformer import (AdamW, CrossEntropyLoss, EncoderBlock, LayerNorm, LearnedPositionalEncoding, Linear,
                             Module, backend, numerical_gradient, relative_error)
from tinytransformer.machine import one_blas_thread
from tinytransformer.models.common import init_gpt2

lesson = Lesson("30 Images as tokens", steps=6)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)

# Settings: --quick trains for fewer steps on fewer images; the story is the same.
SEED = 0
SIZE, PATCH = 16, 4                        # 16 × 16 grayscale images, cut into 4 × 4 patches
GRID = SIZE // PATCH                       # 4 patches a side
N_PATCHES = GRID * GRID                    # 16 tokens per image, each of PATCH² = 16 pixels
KINDS = ["bar", "cross", "square", "circle"]
NOISE = 0.15                               # std of the Gaussian noise on every pixel
N_TRAIN, N_TEST = (2000, 1000) if lesson.quick else (4000, 1000)
SHAPE_STEPS, ORDER_STEPS = (150, 100) if lesson.quick else (600, 300)
BATCH, LR = 64, 1e-2

# %% [markdown]
# ## Images drawn, and cut into patches
#
# Our images are drawn, not downloaded: a horizontal bar, a cross, a square or a circle, of random size (5 to 10
# pixels) at a random place, with noise on every pixel. Drawing them needs nothing to download and no
# new dependency, makes images of any size and any number, and the labels are exact: we know what we
# drew.
#
# Cutting an image of $H \times W$ pixels into non-overlapping $p \times p$ patches gives
# $N = HW/p^2$ patches; each, flattened, is a vector of $p^2$ numbers. Here $16 \times 16$ pixels and
# $p = 4$: $N = 16$ tokens of 16 numbers, read row by row, as text is read. (ViT-Base: $224 \times 224$
# colour images and $p = 16$ give 196 tokens of $16 \cdot 16 \cdot 3 = 768$ numbers.)
#
# The cut is two reshapes and a transpose. We check it against slicing each patch out by hand.

# %%
lesson.step("Images drawn, and cut into patches")


def stamp(kind, size):
    """A size × size boolean drawing of one shape."""
    r, c = np.mgrid[0:size, 0:size]
    middle = (size - 1) / 2
    if kind == "bar":
        return np.abs(r - middle) < 1                                    # a horizontal line
    if kind == "cross":
        return (np.abs(r - middle) < 1) | (np.abs(c - middle) < 1)
    if kind == "square":
        return (r == 0) | (c == 0) | (r == size - 1) | (c == size - 1)   # the outline
    return np.hypot(r - middle, c - middle) < middle + 0.3               # a filled circle


def draw_images(n, rng, rows=SIZE, sizes=(5, 10)):
    """n images [n, SIZE, SIZE] with one shape each, inside the first `rows` rows; labels [n] index KINDS."""
    images = np.zeros((n, SIZE, SIZE))
    labels = rng.integers(0, len(KINDS), n)
    for image, label in zip(images, labels):
        size = rng.integers(sizes[0], sizes[1] + 1)
        shape = stamp(KINDS[label], size)
        top, left = rng.integers(0, rows - size + 1), rng.integers(0, SIZE - size + 1)
        image[top:top + size, left:left + size] = shape
    return images + rng.normal(0, NOISE, images.shape), labels


def patchify(images):
    """[B, H, W] -> [B, N, p·p]: patch (i, j) is token i·GRID + j, its pixels read row by row."""
    B = images.shape[0]
    grid = images.reshape(B, GRID, PATCH, GRID, PATCH)                   # [B, i, u, j, v]: row i·p + u
    return grid.transpose(0, 1, 3, 2, 4).reshape(B, N_PATCHES, PATCH * PATCH)   # [B, i, j, u, v]


def unpatchify(patches):
    """[B, N, p·p] -> [B, H, W], the inverse of patchify (to draw shuffled patches)."""
    B = patches.shape[0]
    grid = patches.reshape(B, GRID, GRID, PATCH, PATCH).transpose(0, 1, 3, 2, 4)
    return grid.reshape(B, SIZE, SIZE)


data = np.random.default_rng(SEED)
train_images, train_labels = draw_images(N_TRAIN, data)
test_images, test_labels = draw_images(N_TEST, data)
train_patches, test_patches = patchify(train_images), patchify(test_images)
print(f"  {N_TRAIN} training and {N_TEST} test images {train_images.shape[1:]}, classes {KINDS}, "
      f"counts {np.bincount(train_labels).tolist()}")
print(f"  one image -> {test_patches.shape[1]} tokens of {test_patches.shape[2]} numbers: {test_patches.shape}")
by_hand = np.array([[image[i * PATCH:(i + 1) * PATCH, j * PATCH:(j + 1) * PATCH].ravel()
                     for i in range(GRID) for j in range(GRID)] for image in test_images[:50]])
lesson.check("token i·4 + j holds exactly the pixels of patch (i, j), sliced out by hand, row by row",
             np.array_equal(test_patches[:50], by_hand))
lesson.figure(plots.shapes_and_patches(test_images, test_labels, KINDS, PATCH, test_patches[0]),
              "30_shapes_as_patches")

# %% [markdown]
# ## A patch embedding is a strided convolution
#
# Each patch vector $x_n$ (16 numbers) goes through one Linear layer, the **patch embedding**,
# $e_n = x_n W + b$ with $W$ of shape $[p^2, d]$: the same $W$ for every patch, as a token embedding is
# the same table for every position. It plays the role of the embedding table: pixels are numbers
# already, so no lookup is needed, only a projection into $d$ dimensions.
#
# Written as an image operation it is a convolution with $d$ kernels of $p \times p$ that moves $p$
# pixels at a time (stride $p$), so that the windows do not overlap:
#
# $$y_{o,i,j} = b_o + \sum_{u,v} \mathrm{image}_{ip+u,\, jp+v}\, K_{o,u,v}, \qquad K_{o,u,v} = W_{up+v,\, o}$$
#
# That is how ViT is usually written (a `Conv2d` with kernel and stride 16). We write the convolution as
# loops in NumPy and compare it with the Linear layer on the patches.

# %%
lesson.step("A patch embedding is a strided convolution")
D = 32                                                                 # d: the width of every token vector


def strided_convolution(images, kernels, bias, stride):
    """images [B, H, W], kernels [d, p, p] -> [B, d, H', W']: each output a window times each kernel."""
    p = kernels.shape[-1]
    rows, cols = (images.shape[1] - p) // stride + 1, (images.shape[2] - p) // stride + 1
    out = np.zeros((images.shape[0], kernels.shape[0], rows, cols))
    for i in range(rows):
        for j in range(cols):
            window = images[:, i * stride:i * stride + p, j * stride:j * stride + p]          # [B, p, p]
            out[:, :, i, j] = (window[:, None] * kernels[None]).sum(axis=(2, 3)) + bias       # [B, d]
    return out


patch_embedding = Linear(PATCH * PATCH, D, rng=backend.new_host_rng(SEED))
embedded = patch_embedding(test_patches[:20])                            # [B, N, d]
kernels = patch_embedding.weight.data.T.reshape(D, PATCH, PATCH)        # K[o, u, v] = W[u·p + v, o]
convolved = strided_convolution(test_images[:20], kernels, patch_embedding.bias.data, stride=PATCH)
as_tokens = convolved.reshape(20, D, N_PATCHES).transpose(0, 2, 1)     # [B, d, i, j] -> [B, N, d]
gap = float(np.abs(embedded - as_tokens).max())
print(f"  Linear on patches {embedded.shape} vs convolution with stride {PATCH} {convolved.shape}: "
      f"largest difference {gap:.1e}")
lesson.check("the patch embedding equals a strided convolution (kernel p × p, stride p), to 1e-12",
             gap < 1e-12, f"{gap:.1e}")
print(f"  parameters: p²·d + d = {patch_embedding.weight.data.size + patch_embedding.bias.data.size}")

# %% [markdown]
# ## A Vision Transformer from the library's layers
#
# The library's `EncoderClassifier` starts from token ids (a table lookup); our tokens are vectors
# already, so we compose the model ourselves from the same layers, forward and backward:
#
# - patches $[B, N, p^2]$ → patch embedding → $+$ a learned position vector per patch → encoder blocks
#   (every patch attends to every patch, no mask) → LayerNorm;
# - one vector per image: the mean over the $N$ patches (ViT adds a learned [CLS] token and reads its
#   vector instead; both work), then a Linear layer to 4 class scores, and cross-entropy.
#
# The backward walks the same layers in reverse. The only new line is the mean's: each of the $N$
# positions receives $1/N$ of the pooled gradient. We check it all against finite differences in float64.

# %%
lesson.step("A Vision Transformer from the library's layers")


class VisionTransformer(Module):
    """patches [B, N, p·p] -> patch embedding (+ positions) -> encoder blocks -> LN -> mean -> logits."""

    def __init__(self, n_classes, positions=True, n_embd=D, n_head=2, n_layer=1, seed=SEED):
        rng = backend.new_host_rng(seed)
        self.patch_embedding = Linear(PATCH * PATCH, n_embd, rng=rng)
        self.wpe = LearnedPositionalEncoding(N_PATCHES, n_embd, rng=rng) if positions else None
        self.blocks = [EncoderBlock(n_embd, n_head, activation="relu", rng=rng) for _ in range(n_layer)]
        self.ln_f = LayerNorm(n_embd)
        self.head = Linear(n_embd, n_classes, rng=rng)
        self.loss_fn = CrossEntropyLoss()
        self.n_patches = None                                            # N, kept for the mean's backward
        init_gpt2(self, n_layer, rng)                                    # GPT-2's N(0, 0.02²) weights

    def forward(self, patches, targets=None):
        """-> (logits [B, n_classes], loss or None)."""
        x = self.patch_embedding(patches)                                # [B, N, d]
        if self.wpe is not None:
            x = self.wpe(x)                                              # + P[n] for patch n
        for block in self.blocks:
            x = block(x)                                                 # [B, N, d], no mask
        h = self.ln_f(x)
        self.n_patches = h.shape[1]                                      # the mean's backward divides by it
        logits = self.head(h.mean(axis=1))                               # [B, d] -> [B, n_classes]
        loss = self.loss_fn(logits, targets) if targets is not None else None
        return logits, loss

    def backward(self):
        """Gradients of every parameter (accumulated), from the loss of the last forward."""
        dpooled = self.head.backward(self.loss_fn.backward())            # [B, d]
        n = self.n_patches
        dh = np.repeat(dpooled[:, None, :] / n, n, axis=1)               # [B, N, d]: 1/N to each patch
        dx = self.ln_f.backward(dh)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        if self.wpe is not None:
            dx = self.wpe.backward(dx)
        self.patch_embedding.backward(dx)


small = VisionTransformer(len(KINDS), n_embd=8, seed=SEED)
jolt = backend.new_host_rng(SEED + 1)
for _, p in small.named_parameters():                                   # larger weights than GPT-2's,
    p.data += backend.randn(p.data.shape, std=0.3, rng=jolt)            # so that no gradient is ~0
x_check, y_check = train_patches[:3], train_labels[:3]
small.zero_grad()
small(x_check, y_check)
small.backward()
errors = {}
for name, p in small.named_parameters():
    if name in ("patch_embedding.weight", "wpe.weight", "blocks.0.attn.sublayer.q_proj.weight",
                "head.weight"):
        numerical = numerical_gradient(lambda: small(x_check, y_check)[1], p.data)
        errors[name] = relative_error(p.grad, numerical)
        print(f"  {name:38s} {tuple(p.data.shape)!s:>9}  backward vs finite differences: {errors[name]:.1e}")
lesson.check("the model's backward matches finite differences to 1e-7 (float64)", max(errors.values()) < 1e-7,
             f"worst {max(errors.values()):.1e}")

# %% [markdown]
# ## Train it to name the shape
#
# Two models, 1 encoder block of 2 heads, $d = 32$ (ReLU in its feed-forward network, cheaper than
# ViT's GELU): one with position vectors, one without. Each is trained on the shapes (batches of 64,
# AdamW, float32 for speed) and tested on images it never saw. Chance is 1/4.

# %%
lesson.step("Train it to name the shape")


def trained_model(patches, labels, n_classes, positions, steps):
    """Train a VisionTransformer in float32; return it copied to float64 (for exact checks), and its losses."""
    with backend.using("float32"), one_blas_thread():
        model = VisionTransformer(n_classes, positions=positions)
        optimizer = AdamW(model.named_parameters(), lr=LR, weight_decay=0.0)
        batches, losses = np.random.default_rng(SEED), []
        patches32 = patches.astype(np.float32)
        for _ in range(steps):
            rows = batches.integers(0, len(labels), BATCH)
            model.zero_grad()
            _, loss = model(patches32[rows], labels[rows])
            model.backward()
            optimizer.step()
            losses.append(float(loss))
    copy = VisionTransformer(n_classes, positions=positions)             # float64, same weights
    copy.load_state_dict(model.state_dict())
    return copy, losses


def accuracy(model, patches, labels):
    return float((model(patches)[0].argmax(axis=-1) == labels).mean())


shape_models, shape_losses, results = {}, {}, {}
for positions in (True, False):
    model, losses = trained_model(train_patches, train_labels, len(KINDS), positions, SHAPE_STEPS)
    shape_models[positions], shape_losses[positions] = model, losses
    results["what shape?", positions] = accuracy(model, test_patches, test_labels)
    print(f"  {'with' if positions else 'without'} positions: {SHAPE_STEPS} steps, loss {losses[0]:.3f} "
          f"(ln 4 = {np.log(4):.3f}) -> {np.mean(losses[-20:]):.3f} (last 20 steps), held-out accuracy "
          f"{results['what shape?', positions]:.3f}")
lesson.check(f"with positions the model names unseen shapes: accuracy ≥ 0.7, far above chance (1/{len(KINDS)})",
             results["what shape?", True] >= 0.7, f"{results['what shape?', True]:.3f}")

# %% [markdown]
# The model without positions does about as well. To name a shape it is enough to know what pieces it
# is made of (a corner, an arc, the middle of a cross), not where each piece is. The ViT paper found the
# same on ImageNet: positions helped by a few points only. The next two steps ask what a bag of patches
# can never tell.

# %% [markdown]
# ## Without positions: a bag of patches
#
# Attention is permutation-equivariant (lesson 04): shuffle the input vectors, and the outputs are
# shuffled the same way. LayerNorm and the feed-forward network work on each token alone, and the mean
# over the patches does not care about their order. So without position vectors the logits of an image
# cannot depend on where its patches are: shuffle the 16 patches into a jumble, and the model gives
# the jumble the same scores.
#
# We shuffle the test images' patches (one random order) and feed both versions to the two trained
# models, in float64.

# %%
lesson.step("Without positions: a bag of patches")
order = np.random.default_rng(SEED + 2).permutation(N_PATCHES)
originals, shuffled = test_patches[:200], test_patches[:200][:, order]   # [200, N, p·p]
change = {}
for positions, model in shape_models.items():
    change[positions] = float(np.abs(model(originals)[0] - model(shuffled)[0]).max())
    print(f"  {'with' if positions else 'without'} positions: largest change of a logit when the patches "
          f"are shuffled: {change[positions]:.1e}")
lesson.check("without positions, shuffling the patches leaves every logit unchanged, to 1e-12",
             change[False] < 1e-12, f"{change[False]:.1e}")
lesson.check("with positions, the same shuffle changes the logits (by more than 1e-3)",
             change[True] > 1e-3, f"{change[True]:.1e}")
probabilities = {positions: [np.exp(l - l.max()) / np.exp(l - l.max()).sum()
                             for l in (model(originals[:1])[0][0], model(shuffled[:1])[0][0])]
                 for positions, model in shape_models.items()}
lesson.figure(plots.shuffled(test_images[0], unpatchify(shuffled[:1])[0], probabilities, KINDS, PATCH),
              "30_shuffled_patches")

# %% [markdown]
# ## Where, not what: top half or bottom half
#
# Now a task that only the order of the patches can answer: one shape (of any kind, 5 to 7 pixels) is
# in the top half or in the bottom half; which? Every test image comes with a **twin**: the same image
# rolled by 8 rows, its top half and bottom half exchanged. Eight rows are two rows of patches, so the
# twin is made of exactly the same 16 patches, pixel for pixel (noise included), in another order, and
# has the other answer.
#
# A model without positions gives both twins the same scores (step 5), so it is right on
# exactly one of each pair: accuracy exactly 1/2, however long it trains. With positions the task is
# easy. The training images are drawn the same way: a random half of such images and their twins.

# %%
lesson.step("Where, not what: top half or bottom half")
HALF = SIZE // 2


def top_or_bottom(n, rng):
    """n images with a small shape in the top half, and the same rolled by HALF rows: ([2n, H, W], labels)."""
    top, _ = draw_images(n, rng, rows=HALF, sizes=(5, 7))
    return np.concatenate([top, np.roll(top, HALF, axis=1)]), np.repeat([0, 1], n)   # 0 top, 1 bottom


drawn, where = top_or_bottom(N_TRAIN // 2, data)
keep = data.permutation(N_TRAIN)                                       # a random half of the images
order_train, order_train_labels = patchify(drawn[keep[:N_TRAIN // 2]]), where[keep[:N_TRAIN // 2]]
order_images, order_labels = top_or_bottom(N_TEST // 2, data)
order_test = patchify(order_images)
top, bottom = order_test[:N_TEST // 2], order_test[N_TEST // 2:]
moved = np.roll(np.arange(N_PATCHES).reshape(GRID, GRID), HALF // PATCH, axis=0).ravel()   # patch order
lesson.check("each twin is made of its image's 16 patches, exactly, in another order",
             np.array_equal(bottom, top[:, moved]) and not np.array_equal(bottom, top))
print(f"  {N_TRAIN // 2} training images ({np.bincount(order_train_labels).tolist()} top/bottom), "
      f"{N_TEST} test images in {N_TEST // 2} twin pairs")
order_models, order_losses = {}, {}
for positions in (False, True):
    model, losses = trained_model(order_train, order_train_labels, 2, positions, ORDER_STEPS)
    order_models[positions], order_losses[positions] = model, losses
    results["top or bottom?", positions] = accuracy(model, order_test, order_labels)
    print(f"  {'with' if positions else 'without'} positions: {ORDER_STEPS} steps, loss {losses[0]:.3f} "
          f"(ln 2 = {np.log(2):.3f}) -> {np.mean(losses[-20:]):.3f} (last 20 steps), held-out accuracy "
          f"{results['top or bottom?', positions]:.3f}")
blind = order_models[False](order_test)[0].argmax(axis=-1)
lesson.check("without positions, each twin gets the same answer as its image: accuracy exactly 1/2 (chance)",
             np.array_equal(blind[:N_TEST // 2], blind[N_TEST // 2:]) and results["top or bottom?", False] == 0.5,
             f"{results['top or bottom?', False]:.3f}")
lesson.check("with positions, the same model tells top from bottom: accuracy ≥ 0.9",
             results["top or bottom?", True] >= 0.9, f"{results['top or bottom?', True]:.3f}")
lesson.figure(plots.accuracies(results, {"what shape?": 1 / len(KINDS), "top or bottom?": 0.5},
                               shape_losses, order_losses), "30_with_and_without_positions")

# %% [markdown]
# Position vectors are what turn a bag of patches back into an image. ViT's are learned, one per patch
# index, as here: nothing tells the model that patch 5 is next to patch 1 and patch 4, it learns that
# from the data.
#
# **The same block, another tokenizer.** Nothing after the patch embedding knew it was looking at an
# image. Speech models do the same with sound: Whisper turns 30 seconds of audio into a log-mel
# spectrogram, 3000 slices of 80 frequencies (one every 10 ms), and two small convolutions, the second
# with stride 2, make them 1500 tokens for an encoder like ours. The Decision Transformer writes a game
# as a sequence of (return still to come, state, action) triples, three tokens per time step, each kind
# embedded by its own layer, and a GPT with its causal mask predicts the next action from the return
# we ask for. Karpathy's CS25 talk makes the same point: to give a Transformer more information
# (radar, a map, audio), cut it into tokens and add them to the set, and attention works out how they
# relate. What changes from one field to the next is the tokenizer and the position vectors; the block
# is the same.

# %%
lesson.done()
