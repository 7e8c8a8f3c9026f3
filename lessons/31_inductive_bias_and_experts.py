# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 31: inductive bias, and a mixture of experts
#
# Karpathy's talk calls the Transformer a model with a **weak inductive bias**: it assumes little about
# its input, so it can learn almost anything, but it needs more data to learn what a model with the right
# assumption knows from the start. With little data a convolution, which assumes that nearby tokens matter
# and that a pattern means the same wherever it is, can do better.
#
# - One small task, a convolution and an attention model, held-out accuracy against training-set size.
# - Then an idea for scaling that the lectures name: a **mixture of experts**, many feed-forward networks
#   of which each token uses one: $E$ times the parameters for one expert's work per token.
# - Last, in prose only: memory, retrieval and hallucination, problems still open.
#
# Run: `python lessons/31_inductive_bias_and_experts.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson31 as plots

from tinytransformer import (AdamW, CrossEntropyLoss, FeedForward, Linear, Module, Parameter, backend,
                             numerical_gradient, relative_error)
from tinytransformer.machine import one_blas_thread
from tinytransformer.models.encoder import EncoderClassifier, EncoderConfig

lesson = Lesson("31 Inductive bias and experts", steps=7)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)


def rng(seed):
    return backend.new_host_rng(seed)


# Settings: --quick trains at two sizes and one seed (step 3), and shorter (step 7).
V, T, MOTIF = 6, 6, (1, 2)               # tokens 1..6 (0 is the encoder's padding), length 6, the motif "1 2"
SIZES = [32, 2048] if lesson.quick else [32, 128, 512, 2048]
SEEDS = [0] if lesson.quick else [0, 1, 2]
STEPS, BATCH = 400, 256                  # at most STEPS steps; a model stops once it fits its training set
MOE_STEPS, MOE_SEEDS = (150, [0, 1, 2]) if lesson.quick else (300, [0, 1, 2, 3, 4])

# %% [markdown]
# ## A motif anywhere in the sequence
#
# Sequences of $T = 6$ tokens from 6. The label is 1 when "1 2" stand next to each other somewhere, 0
# when not. Each negative has "2 1" planted instead, so both classes hold nearly the same tokens: their
# **order and adjacency** tell them apart, wherever they are.
#
# That is exactly what a convolution assumes. A filter of width $k = 2$ looks at two neighbours, the same
# filter slides over every position, and a max over positions asks "anywhere?".

# %%
lesson.step("A motif anywhere in the sequence")


def has_motif(sequence):
    return any(tuple(sequence[t:t + 2]) == MOTIF for t in range(len(sequence) - 1))


def motif_data(seed, n):
    """n sequences [n, T] of ids 1..V and labels [n]: half with "1 2" somewhere, half with only "2 1"."""
    generator = np.random.default_rng(seed)
    tokens, labels = np.zeros((n, T), dtype=np.int64), np.arange(n) % 2
    for j, label in enumerate(labels):
        while True:                                            # plant, then reject a motif made by chance
            sequence = generator.integers(1, V + 1, T)
            t = generator.integers(0, T - 1)
            sequence[t:t + 2] = MOTIF if label else MOTIF[::-1]
            if has_motif(sequence) == bool(label):
                break
        tokens[j] = sequence
    order = generator.permutation(n)
    return tokens[order], labels[order]


tokens, labels = motif_data(0, 2000)
for j in range(4):
    print(f"  {tokens[j]}  label {labels[j]}")
count_1 = [(tokens[labels == c] == 1).sum(axis=1).mean() for c in (0, 1)]
print(f"  mean number of 1s per sequence: {count_1[0]:.2f} in class 0, {count_1[1]:.2f} in class 1: "
      f"nearly the same tokens, so counting them tells little")

# %% [markdown]
# ## A convolution with max-pooling
#
# On one-hot inputs $x_t$ (a row of $V + 1$ channels), a convolution of width $k$ with $C$ filters,
# weights $w_0, \ldots, w_{k-1}$ (each $[V + 1, C]$), then ReLU, a max over positions, and a linear layer:
#
# $$a_t = \sum_{i=0}^{k-1} x_{t+i}\, w_i + b, \qquad m = \max_t \mathrm{ReLU}(a_t), \qquad \mathrm{logits} = m W + c$$
#
# Backward: the max sends $dm$ to the one position $t^*$ that won (per filter); ReLU lets it through where
# $a_{t^*} > 0$; then each tap adds $x_{t+i}^\top da_t$ into $dw_i$ and $da_t\, w_i^\top$ into $dx_{t+i}$.
# The max and the ReLU are piecewise linear, so the finite-difference check uses random real inputs,
# where no two positions tie.

# %%
lesson.step("A convolution with max-pooling")


class MotifConv(Module):
    """x [B, T, c] -> conv (k taps, C filters, no padding) -> ReLU -> max over positions -> Linear -> [B, 2]."""

    def __init__(self, channels, filters, k, rng):
        self.w = Parameter(backend.randn((k, channels, filters), std=1 / np.sqrt(k * channels), rng=rng))
        self.b = Parameter(backend.xp.zeros(filters, dtype=backend.default_dtype()))
        self.head = Linear(filters, 2, rng=rng)
        self.x = self.h = self.winner = None     # input, ReLU output and the winning position: for backward

    def forward(self, x):
        k, positions = self.w.data.shape[0], x.shape[1] - self.w.data.shape[0] + 1
        self.x = x
        a = sum(x[:, i:i + positions] @ self.w.data[i] for i in range(k)) + self.b.data   # [B, T − k + 1, C]
        self.h = np.maximum(a, 0)
        self.winner = self.h.argmax(axis=1)[:, None]                                    # [B, 1, C]
        return self.head(np.take_along_axis(self.h, self.winner, axis=1)[:, 0])        # [B, C] -> [B, 2]

    def backward(self, dlogits):
        dm = self.head.backward(dlogits)                                                # [B, C]
        dh = np.zeros_like(self.h)
        np.put_along_axis(dh, self.winner, dm[:, None], axis=1)                         # only the max's position
        da = dh * (self.h > 0)                                                          # [B, T − k + 1, C]
        self.b.grad += da.sum(axis=(0, 1))
        dx = np.zeros_like(self.x)
        for i in range(self.w.data.shape[0]):
            x_i = self.x[:, i:i + da.shape[1]]                                          # [B, T − k + 1, c]
            self.w.grad[i] += x_i.reshape(-1, x_i.shape[-1]).T @ da.reshape(-1, da.shape[-1])
            dx[:, i:i + da.shape[1]] += da @ self.w.data[i].T
        return dx


conv = MotifConv(4, 5, 3, rng(1))
x_check = backend.randn((3, 9, 4), rng=rng(2))                 # real-valued inputs: no ties in the max
g = backend.randn((3, 2), rng=rng(3))
conv.zero_grad()
conv(x_check)
dx = conv.backward(g)
loss = lambda: float((conv(x_check) * g).sum())                # noqa: E731  df/dlogits = g
errors = {"x": relative_error(dx, numerical_gradient(loss, x_check))}
errors |= {name: relative_error(p.grad, numerical_gradient(loss, p.data)) for name, p in conv.named_parameters()}
print("  relative error against finite differences: " + ", ".join(f"{n} {e:.1e}" for n, e in errors.items()))
lesson.check("the convolution's backward matches finite differences in float64, for the input and every "
             "parameter (≤ 1e-7)", max(errors.values()) <= 1e-7, f"worst {max(errors.values()):.1e}")

# %% [markdown]
# ## Accuracy against the size of the training set
#
# Two models, trained on the first $n$ sequences of one set for $n$ = 32 up to 2048, tested on 1000 new
# ones:
#
# - the convolution: $k = 2$, 32 filters;
# - attention: the library's `EncoderClassifier`, one encoder block of 8 heads ($d = 16$) with learned
#   positions, the mean over positions, a linear layer. It has to learn from the data which position is
#   next to which.
#
# Both use AdamW, batches of 256 (or the whole set), and stop once they classify every training sequence
# right (at most 400 steps).

# %%
lesson.step("Accuracy against the size of the training set")


def train(model, forward, tokens, labels, lr, seed):
    """AdamW until `forward` classifies every training sequence right (checked every 25 steps), or STEPS."""
    loss_fn, optimizer = CrossEntropyLoss(), AdamW(model.named_parameters(), lr=lr, weight_decay=0.0)
    batches = np.random.default_rng(seed)
    for step in range(STEPS):
        if step % 25 == 0 and (forward(tokens).argmax(axis=-1) == labels).all():
            return step
        rows = batches.integers(0, len(tokens), min(BATCH, len(tokens)))
        model.zero_grad()
        loss_fn(forward(tokens[rows]), labels[rows])
        model.backward(loss_fn.backward())
        optimizer.step()
    return STEPS


def held_out(forward, tokens, labels):
    return float((forward(tokens).argmax(axis=-1) == labels).mean())


onehot = lambda ids: np.eye(V + 1, dtype=backend.default_dtype())[ids]     # noqa: E731  [B, T] -> [B, T, V + 1]
accuracy = {"convolution": np.zeros((len(SEEDS), len(SIZES))), "attention": np.zeros((len(SEEDS), len(SIZES)))}
with backend.using("float32"), one_blas_thread():
    for s, seed in enumerate(SEEDS):
        train_tokens, train_labels = motif_data(seed, max(SIZES))
        test_tokens, test_labels = motif_data(10_000 + seed, 1000)
        for j, n in enumerate(SIZES):
            conv = MotifConv(V + 1, 32, 2, rng(seed))
            conv_forward = lambda ids: conv(onehot(ids))                     # noqa: E731
            conv_steps = train(conv, conv_forward, train_tokens[:n], train_labels[:n], 1e-2, seed)
            accuracy["convolution"][s, j] = held_out(conv_forward, test_tokens, test_labels)
            encoder = EncoderClassifier(EncoderConfig(vocab_size=V + 1, n_classes=2, block_size=T, n_layer=1,
                                                      n_head=8, n_embd=16, seed=seed))
            encoder_forward = lambda ids: encoder(ids)[0]                    # noqa: E731
            encoder_steps = train(encoder, encoder_forward, train_tokens[:n], train_labels[:n], 5e-3, seed)
            accuracy["attention"][s, j] = held_out(encoder_forward, test_tokens, test_labels)
            print(f"  seed {seed}, n = {n:>4}: convolution {accuracy['convolution'][s, j]:.3f} "
                  f"({conv_steps} steps), attention {accuracy['attention'][s, j]:.3f} ({encoder_steps} steps)")
print(f"  parameters: convolution {conv.num_parameters():,}, attention {encoder.num_parameters():,}")
gap = accuracy["convolution"] - accuracy["attention"]                        # [seeds, sizes]
lesson.check(f"with n = {SIZES[0]} the convolution is clearly ahead: by ≥ 0.15 (every seed)",
             (gap[:, 0] >= 0.15).all(), f"smallest gap {gap[:, 0].min():.3f}")
lesson.check(f"attention needs the data: from n = {SIZES[0]} to {SIZES[-1]} it gains ≥ 0.3 (every seed)",
             (accuracy["attention"][:, -1] - accuracy["attention"][:, 0] >= 0.3).all())
lesson.check(f"with n = {SIZES[-1]} attention has caught up: within 0.02 of the convolution, or ahead "
             f"(every seed)", (gap[:, -1] <= 0.02).all(), f"largest gap {gap[:, -1].max():.3f}")
lesson.figure(plots.accuracy_by_size(SIZES, accuracy), "31_accuracy_by_size")

# %% [markdown]
# The convolution has few parameters and the right assumption built in: from 32 examples it already
# finds "1 2" at any position. Attention has many more parameters and no such assumption; it must learn
# from the data that position $t$ should look at $t - 1$, and with 32 examples it stays near chance.
# Given enough data it gets there too, and the same weak bias lets it learn what a small window cannot
# (lesson 27: a token 15 back). The margin of 0.02 is 20 of the 1000 test sequences, against a gap of
# 0.3 or more at $n = 32$. Local attention (lesson 27) is one way to give attention back some bias.

# %% [markdown]
# ## A mixture of experts
#
# A Transformer's parameters live mostly in its feed-forward networks (lesson 09). A **mixture of
# experts** replaces one of them by $E$ of them, the experts, and a router that sends each token to one
# (top-1, as the Switch Transformer does):
#
# $$p = \mathrm{softmax}(x W_r + b_r), \qquad e = \arg\max_i p_i, \qquad y = p_e\, \mathrm{FFN}_e(x)$$
#
# Scaling the output by $p_e$ is what lets the router learn: the loss depends on $p_e$, so it has a
# gradient. The experts are the library's `FeedForward`; the router is a `Linear`. We check the layer
# token by token against a plain loop over the tokens.

# %%
lesson.step("A mixture of experts")


class MixtureOfExperts(Module):
    """x [N, d] -> y [N, d]: each token through its router's top expert, times that expert's probability;
    also the balancing loss E·Σ_i f_i·P_i. backward(dy, dbalance) takes the gradient of both."""

    def __init__(self, d, d_hidden, n_experts, rng):
        self.E = n_experts
        self.router = Linear(d, n_experts, rng=rng)
        self.experts = [FeedForward(d, d_hidden, activation="relu", rng=rng) for _ in range(n_experts)]

    def forward(self, x):
        N = x.shape[0]
        z = self.router(x)                                                        # [N, E]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        self.p = p / p.sum(axis=1, keepdims=True)                                 # [N, E]
        self.choice = self.p.argmax(axis=1)                                       # [N]: each token's expert
        self.gate = self.p[np.arange(N), self.choice]                             # [N]: p_e
        self.rows = [np.flatnonzero(self.choice == i) for i in range(self.E)]     # the tokens of each expert
        self.out = np.zeros_like(x)                                               # FFN_e(x), kept for dp_e
        self.multiply_adds = N * x.shape[1] * self.E                              # the router's x W_r
        for i, rows in enumerate(self.rows):
            if rows.size:                                                         # an expert sees its tokens only
                self.out[rows] = self.experts[i](x[rows])
                self.multiply_adds += rows.size * 2 * x.shape[1] * self.experts[i].d_hidden
        self.f = np.bincount(self.choice, minlength=self.E) / N                   # [E], a count: no gradient
        self.P = self.p.mean(axis=0)                                              # [E]
        self.balance = self.E * float((self.f * self.P).sum())
        return self.gate[:, None] * self.out                                      # [N, d]

    def backward(self, dy, dbalance=0.0):
        N = dy.shape[0]
        dp = np.zeros_like(self.p)
        dp[np.arange(N), self.choice] = (dy * self.out).sum(axis=1)               # y = p_e · out
        dp += dbalance * self.E * self.f / N                                      # ∂(E Σ f_i P_i)/∂p_ni
        dz = self.p * (dp - (dp * self.p).sum(axis=1, keepdims=True))             # softmax backward
        dx = self.router.backward(dz)                                             # [N, d]
        for i, rows in enumerate(self.rows):
            if rows.size:
                dx[rows] += self.experts[i].backward(self.gate[rows, None] * dy[rows])
        return dx


d, d_hidden, E = 6, 10, 4
moe = MixtureOfExperts(d, d_hidden, E, rng(4))
x = backend.randn((24, d), rng=rng(5))
y = moe(x)
loop = np.stack([moe.p[n].max() * moe.experts[int(moe.p[n].argmax())](x[n:n + 1])[0] for n in range(len(x))])
print(f"  router probabilities of the first 2 tokens: {moe.p[0]}, {moe.p[1]}\n  experts chosen: {moe.choice}")
lesson.check("every token's output is its top expert's output times that expert's probability (a loop over "
             "the tokens agrees to 1e-12)", np.abs(y - loop).max() < 1e-12, f"{np.abs(y - loop).max():.1e}")
print(f"  balancing loss E·Σ f_i·P_i = {moe.balance:.3f} (1 when both f and P are even, up to E = {E} when "
      f"one expert takes every token with certainty)")

# %% [markdown]
# ## The backward by hand
#
# With $L = \sum y \odot g + \alpha L_{\mathrm{bal}}$, going back through $y = p_e\, \mathrm{FFN}_e(x)$:
#
# - the expert gets $p_e\, dy$ (its own tokens only), and gives back its share of $dx$;
# - the router probability gets $dp_e = dy \cdot \mathrm{FFN}_e(x)$, and every $p_i$ gets
#   $\alpha E f_i / N$ from $P_i = \frac{1}{N}\sum_n p_{ni}$;
# - softmax's backward, $dz = p \odot (dp - \sum_j p_j\, dp_j)$, then the router's `Linear`.
#
# Two things are **piecewise**: which expert wins (the argmax) and $f_i$, a count of winners. Neither has a
# gradient; between two changes of choice they are constants. So the check holds as long as the
# finite-difference nudges ($h = 10^{-5}$) change no choice: we count the choices that flip.

# %%
lesson.step("The backward by hand")
g = backend.randn(y.shape, rng=rng(6))
alpha = 0.3
moe.zero_grad()
moe(x)
dx = moe.backward(g, dbalance=alpha)
chosen, flipped = moe.choice.copy(), [0]


def moe_loss():
    out = moe(x)
    flipped[0] += int((moe.choice != chosen).sum())
    return float((out * g).sum()) + alpha * moe.balance


errors = {"x": relative_error(dx, numerical_gradient(moe_loss, x))}
errors |= {name: relative_error(p.grad, numerical_gradient(moe_loss, p.data)) for name, p in moe.named_parameters()}
top2 = np.sort(moe.router(x), axis=1)[:, -2:]                            # each token's two best scores
print(f"  relative errors: x {errors['x']:.1e}, worst parameter {max(errors.values()):.1e};  smallest gap between "
      f"two best router scores {np.diff(top2, axis=1).min():.3f} (≫ h);  choices flipped: {flipped[0]}")
lesson.check("no nudge changed a token's expert, so f and the choices were constant where we checked",
             flipped[0] == 0)
lesson.check("the hand backward of the whole layer, balancing loss included, matches finite differences in "
             "float64 (≤ 1e-7) for x, the router and every expert", max(errors.values()) <= 1e-7,
             f"worst {max(errors.values()):.1e}")

# %% [markdown]
# ## E times the parameters, one expert's work
#
# At $d = 32$, a hidden width of 128 and $E = 8$: the layer holds 8 feed-forward networks, but each token
# goes through one. We count the multiply-adds of the matrix products the forward actually ran (the
# layer counts them from the shapes it used), and time a forward on 1024 tokens against two dense
# feed-forward networks: one expert's size, and one with as many parameters as all the experts (hidden
# width $8 \cdot 128$).

# %%
lesson.step("E times the parameters, one expert's work")
d, d_hidden, E, N = 32, 128, 8, 1024
moe = MixtureOfExperts(d, d_hidden, E, rng(7))
dense = FeedForward(d, d_hidden, activation="relu", rng=rng(8))
dense_wide = FeedForward(d, E * d_hidden, activation="relu", rng=rng(9))
x = backend.randn((N, d), rng=rng(10))
moe(x)
per_token = moe.multiply_adds / N
print(f"  parameters: one FFN {dense.num_parameters():,}, the mixture {moe.num_parameters():,} "
      f"({moe.num_parameters() / dense.num_parameters():.2f}×), the wide FFN {dense_wide.num_parameters():,}")
print(f"  multiply-adds per token: mixture {per_token:,.0f} = router d·E {d * E} + one expert 2·d·h "
      f"{2 * d * d_hidden:,};  wide FFN 2·d·E·h = {2 * d * E * d_hidden:,}")
lesson.check(f"the mixture has E = {E} experts' parameters plus the router's: E·(2dh + h + d) + dE + E",
             moe.num_parameters() == E * dense.num_parameters() + d * E + E)
lesson.check("the work per token is one expert's, plus the router: exactly 2·d·h + d·E multiply-adds, "
             f"{E * 2 * d * d_hidden / per_token:.1f}× less than the wide FFN with the same parameters",
             per_token == 2 * d * d_hidden + d * E)
with one_blas_thread():
    times = {name: lesson.median_time(lambda layer=layer: layer(x), repeat=7)
             for name, layer in (("one FFN", dense), ("mixture", moe), ("wide FFN", dense_wide))}
print("  forward on 1024 tokens (median of 7, one BLAS thread): "
      + ", ".join(f"{name} {t * 1e3:.2f} ms" for name, t in times.items())
      + f"; the mixture {times['wide FFN'] / times['mixture']:.1f}× faster than the wide FFN")

# %% [markdown]
# The router and the gathering of each expert's tokens cost a little beyond one FFN. In a large model the
# experts sit on different devices and the tokens travel to them: that traffic is what a mixture costs.
#
# The multiply-adds are the layer's own count and depend only on the algorithm. The times depend also on
# the machine and on whatever else it runs at the same moment, which is why they are printed and not
# checked.

# %% [markdown]
# ## Balancing the load
#
# Left alone, a router tends to **collapse**: the expert that gets more tokens learns faster, so the
# router sends it still more, and the other experts sit idle. The Switch Transformer adds
#
# $$L_{\mathrm{bal}} = E \sum_{i=1}^{E} f_i\, P_i$$
#
# $f_i$ cannot be differentiated, but $P_i$ can: the gradient lowers the probability of experts in
# proportion to how many tokens they already get. It is smallest, 1, when the load is even.
#
# The task: inputs $x \in \mathbb{R}^8$ with mean 1 in every feature (like hidden states, they share a
# direction), targets $\sin(x W / \sqrt{8})$ for a fixed random $W$; one mixture of 8 experts (hidden
# width 16) fits them by mean squared error, with $\alpha = 0$ and with $\alpha = 0.1$, at several seeds.
# We measure the load $f$ on 4000 new inputs: the largest expert's share, and the entropy of $f$ (at most
# $\ln 8 \approx 2.08$, when even).

# %%
lesson.step("Balancing the load")
d, d_hidden, E = 8, 16, 8


def load_after_training(seed, alpha):
    """Train a mixture on the sine task with balancing weight alpha; its load f and mse on new inputs."""
    W = np.random.default_rng(seed).normal(size=(d, d))
    inputs = lambda generator, n: generator.normal(size=(n, d)) + 1.0          # noqa: E731  mean 1
    moe = MixtureOfExperts(d, d_hidden, E, rng(seed))
    optimizer = AdamW(moe.named_parameters(), lr=1e-2, weight_decay=0.0)
    batches = np.random.default_rng(100 + seed)
    for _ in range(MOE_STEPS):
        x = inputs(batches, 128)
        target = np.sin(x @ W / np.sqrt(d))
        moe.zero_grad()
        y = moe(x)                                                              # [128, d]
        moe.backward(2 * (y - target) / y.size, dbalance=alpha)                 # d(mse)/dy
        optimizer.step()
    x = inputs(np.random.default_rng(10_000 + seed), 4000)
    mse = float(((moe(x) - np.sin(x @ W / np.sqrt(d))) ** 2).mean())
    return moe.f, mse


entropy = lambda f: float(-(f[f > 0] * np.log(f[f > 0])).sum())             # noqa: E731
ALPHA = 0.1
loads = {0.0: [], ALPHA: []}
with one_blas_thread():
    for seed in MOE_SEEDS:
        for alpha in loads:
            f, mse = load_after_training(seed, alpha)
            loads[alpha].append(f)
            print(f"  seed {seed}, α = {alpha}: load {f}  largest {f.max():.2f}, entropy {entropy(f):.2f}, "
                  f"mse {mse:.3f}")
largest = {alpha: np.array([f.max() for f in fs]) for alpha, fs in loads.items()}
entropies = {alpha: np.array([entropy(f) for f in fs]) for alpha, fs in loads.items()}
lesson.check("without the balancing loss the router collapses: the largest expert takes ≥ half the tokens "
             "(every seed)", (largest[0.0] >= 0.5).all(), f"smallest {largest[0.0].min():.2f}")
lesson.check(f"with it the load is even: the largest share ≤ 2/E = {2 / E:.2f} and the entropy of f ≥ 0.9·ln E "
             f"= {0.9 * np.log(E):.2f} (every seed)",
             (largest[ALPHA] <= 2 / E).all() and (entropies[ALPHA] >= 0.9 * np.log(E)).all(),
             f"largest {largest[ALPHA].max():.2f}, lowest entropy {entropies[ALPHA].min():.2f}")
lesson.figure(plots.expert_load(MOE_SEEDS, loads, ALPHA), "31_expert_load")

# %% [markdown]
# Without the loss, one or two experts do the work and the others' parameters are wasted: a mixture of
# 8 that computes like a mixture of 1. With it, every expert gets about $1/8$ of the tokens. (The fit
# may be a little worse at this tiny size: the balancing loss trades some of the router's freedom for
# the use of every expert.)
#
# **Open problems (prose, with no check).** The lectures end on what Transformers still lack.
# **Memory**: a model knows only its weights and its context window (lesson 04: a hard limit of
# block_size tokens); a conversation is forgotten when it ends. Karpathy suggests a scratchpad: teach the
# model, by examples in the prompt, to write notes to an external store and read them back, as people
# use a notebook. **Retrieval** makes that practical: search documents for the question and put what is
# found into the context (RAG, Fusion-in-Decoder), so that an answer can rest on current text that can
# be cited. **Hallucination** is what happens without it: the model samples a likely next token (lesson
# 17), and a fluent, confident sentence is likely whether or not it is true; retrieval gives fewer
# hallucinations, not none. And mixtures of experts, as above, are how several of today's largest models
# grow their parameters without growing the work per token.

# %%
lesson.done()
