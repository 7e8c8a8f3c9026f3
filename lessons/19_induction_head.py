# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 19: in-context learning: an induction head
#
# Give a trained language model the start of a sequence it has never seen. Where the sequence begins to
# repeat itself, the model starts to predict the repeat.
#
# It learned no fact about this sequence. It learned an algorithm: "find where the current token
# occurred before, and predict the token that followed it". The prompt is the program; the weights are
# the interpreter.
#
# Olsson et al. (2022) found this algorithm in trained Transformers as a pair of attention heads:
#
# 1. layer 1, a **previous-token head**: position $s$ attends to $s - 1$ and copies "the token before me
#    was a" into position $s$;
# 2. layer 2, an **induction head**: position $t$ (token a) attends to the position $s$ whose previous
#    token was a, which is the one after the earlier a, and copies its token.
#
# The second head's query (the current token) is matched against a key the first head wrote (the
# previous token). So the algorithm needs two layers: one layer can find the earlier copy of the current
# token, but not the token after it.
#
# The lesson trains a two-layer GPT on random sequences whose second half repeats the first (a new
# random sequence every time), finds the two heads, checks that they are absent in the same model
# untrained, and that one layer does not learn the task with the same training.
#
# Run: `python lessons/19_induction_head.py` (add `--no-pause` to run straight through).

# %%
import math
import time

import numpy as np
from _lesson import Lesson
from _plots import lesson19 as plots

from tinytransformer import AdamW, backend, clip_grad_norm, cosine_lr
from tinytransformer.machine import one_blas_thread
from tinytransformer.models import GPT, GPTConfig

lesson = Lesson("19 In-context learning: an induction head", steps=8)

V = 32                    # tokens 0 .. 31
L_MIN, L_MAX = 4, 10      # the length of the random first half, new for every batch
L_SHOW = 8                # the half length of the sequences the figures show
# The heads form between about 600 and 1200 iterations (measured over seeds), so --quick cannot train the
# two-layer model for less than the full run does; it leaves out the one-layer comparison instead, which
# means something only after the same 1200 iterations.
S = {"iters": 1200, "batch_size": 32}
SEED = 1                  # 3 of 4 seeds measured (1, 2, 3; not 1337) form the heads by 1200 iterations
INDUCTION_MIN = 0.3       # the trained head's score must exceed it (seeds 1, 2, 3 measured 0.77, 0.70, 0.73)


def repeated_halves(rng, batch_size, L):
    """x [B, 2L-1] and targets [B, 2L-1]: L random tokens, then the same L again, shifted by one."""
    first = rng.integers(V, size=(batch_size, L))
    sequence = np.concatenate([first, first], axis=1)                   # [B, 2L]
    return sequence[:, :-1], sequence[:, 1:]


def make_model(n_layer):
    """A small GPT with the 2017 paper's positions: the fixed sinusoidal table, and token vectors of the
    same size (std 1; GPT-2's 0.02 would be drowned by the table, lesson 04), so an untied output layer."""
    model = GPT(GPTConfig(vocab_size=V, block_size=2 * L_MAX, n_layer=n_layer, n_head=1, n_embd=32,
                          positional="sinusoidal", tie_weights=False, seed=SEED))
    table = model.wte.weight.data
    table[...] = backend.randn(table.shape, 1.0, backend.new_host_rng(SEED), table.dtype)
    return model


def train(model, iters, seed=SEED, lr=5e-3):
    """Lesson 14's loop; every batch is a new set of random sequences, with a new half length."""
    rng = np.random.default_rng(seed)
    optimizer = AdamW(model.named_parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
    losses = []
    with one_blas_thread():  # matrices this small run fastest on one BLAS thread
        for it in range(iters):
            x, y = repeated_halves(rng, S["batch_size"], int(rng.integers(L_MIN, L_MAX + 1)))
            _, loss = model(backend.asarray(x), backend.asarray(y))
            model.zero_grad()
            model.backward()
            clip_grad_norm(model.parameters(), 1.0)
            optimizer.step(lr=cosine_lr(it, lr=lr, min_lr=lr / 10, warmup_iters=30, lr_decay_iters=iters))
            losses.append(float(loss))
    return losses


def loss_per_position(model, x, y):
    """Cross-entropy of every position, averaged over the batch: [T]."""
    logits = backend.to_numpy(model(backend.asarray(x))[0]).astype(np.float64)     # [B, T, V]
    logits -= logits.max(axis=-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0].mean(axis=0)


def head_scores(model, x, L):
    """Per layer and head: (induction score, previous-token score), from the last forward on x.

    induction: mean weight that a query t of the second half puts on key t - L + 1, the position after
    the earlier occurrence of its own token; previous-token: mean weight of query t on key t - 1."""
    second = np.arange(L, 2 * L - 1)
    every = np.arange(1, 2 * L - 1)
    scores = []
    for block in model.blocks:
        weights = backend.to_numpy(block.self_attn.sublayer.weights)                 # [B, h, T, T]
        scores.append((weights[:, :, second, second - L + 1].mean(axis=(0, 2)),      # [h]
                       weights[:, :, every, every - 1].mean(axis=(0, 2))))           # [h]
    return scores


def measure(model, rng, Ls=(6, 8, 10), n=200):
    """First-half loss, second-half loss, and head scores, averaged over fresh sequences of several L."""
    first, second, scores = [], [], []
    for L in Ls:
        x, y = repeated_halves(rng, n, L)
        per_position = loss_per_position(model, x, y)
        first.append(per_position[:L - 1].mean())       # targets 1 .. L-1: new random tokens
        second.append(per_position[L:].mean())           # targets L+1 .. 2L-1: the repeat (target L is
        scores.append(head_scores(model, x, L))          # the first repeated token: not yet knowable)
    layer_scores = [tuple(np.mean([s[layer][kind] for s in scores], axis=0) for kind in (0, 1))
                    for layer in range(len(model.blocks))]
    return float(np.mean(first)), float(np.mean(second)), layer_scores

# %% [markdown]
# ## The task: random tokens, then the same tokens again
#
# Each sequence is $L$ random tokens out of $V = 32$, then the same $L$ tokens again. $L$ is drawn from
# 4 to 10 for every batch, so no fixed position holds the answer. A GPT reads it and predicts each next
# token.
#
# - **First half**: nothing can be known. The best loss there is $\ln V \approx 3.47$ nats.
# - **Second half**: every token is a copy of one the model has just read, $L$ positions back. A model
#   that looks it up pays almost nothing.
#
# No sequence is ever seen twice (there are $32^L$ of them). So a low loss in the second half cannot be
# memory of the training set: it has to be read from the context.

# %%
lesson.step("The task: random tokens, then the same tokens again")
rng = np.random.default_rng(0)
x, y = repeated_halves(rng, 1, 6)
print(f"  V = {V}, L from {L_MIN} to {L_MAX}")
print(f"  L = 6:  input   {x[0].tolist()}")
print(f"          targets {y[0].tolist()}")
print(f"  ln V = {math.log(V):.3f} nats: the loss of a uniform guess, and the best possible in the first half")
lesson.check("the second half of the targets is the first half again (target t is input t - L + 1)",
             bool((y[0, 6:] == x[0, 1:6]).all()))

# %% [markdown]
# ## Train a two-layer GPT
#
# The model: a GPT with 2 layers, 1 head per layer, `n_embd = 32`. The training: 1200 iterations of
# AdamW on batches of 32 new random sequences (lesson 14's loop). A second copy of the same model, with
# the same initial weights, is kept untrained to compare against.
#
# Why the sinusoidal positions of the 2017 paper, with token vectors of its size?
#
# - A head that looks $k$ positions back is then the same linear map at every position (lesson 04: a
#   shift is a rotation), and the heads form within a thousand iterations.
# - With learned positions at GPT-2's initialisation, the same training finds tricks of position first
#   (a head that looks back about half the way), and the induction head takes several times longer.

# %%
lesson.step("Train a two-layer GPT")
untrained = make_model(2)
model = make_model(2)
t0 = time.perf_counter()
losses = train(model, S["iters"])
print(f"  {S['iters']} iterations in {time.perf_counter() - t0:.1f} s; training loss {np.mean(losses[:10]):.3f} "
      f"(first 10) -> {np.mean(losses[-10:]):.3f} (last 10)")
first_half, second_half, scores = measure(model, np.random.default_rng(1))
first_untrained, second_untrained, scores_untrained = measure(untrained, np.random.default_rng(1))
print(f"  fresh sequences, trained:    first half {first_half:.3f}, second half {second_half:.3f} nats")
print(f"  fresh sequences, untrained:  first half {first_untrained:.3f}, second half {second_untrained:.3f} nats")

# %% [markdown]
# ## It copies from context it has never seen
#
# What should the loss on fresh random sequences look like, half by half?
#
# - First half: at $\ln V$ or a little above it. Nothing there can be predicted, and the trained model
#   even pays a little for expecting repeats that do not come.
# - Second half: far below $\ln V$.
# - The untrained model: at $\ln V$ everywhere.

# %%
lesson.step("It copies from context it has never seen")
lesson.check("second half: far below ln V (at least 1.5 nats lower)", second_half < math.log(V) - 1.5,
             f"{second_half:.3f} < {math.log(V) - 1.5:.3f}")
lesson.check("first half: no better than ln V (nothing there can be read from the context)",
             first_half > math.log(V) - 0.1, f"{first_half:.3f} > {math.log(V) - 0.1:.3f}")
lesson.check("the untrained model copies nothing: its second half is within 0.1 nats of ln V",
             abs(second_untrained - math.log(V)) < 0.1, f"{second_untrained:.3f}")

# %% [markdown]
# ## The two heads
#
# Where in the model is the copying done? Two scores per head:
#
# - **induction score**: the mean weight that a query in the second half puts on the position right
#   after the earlier occurrence of its own token ($t - L + 1$). Uniform attention over the keys a query
#   may see would give about 0.1.
# - **previous-token score**: the mean weight a query puts on the position just before it ($t - 1$).
#
# With one head per layer, layer 1's head is not a sharp previous-token head. It spreads its weight over
# the last few positions, the previous one most. That is enough to write "the tokens just before me" into
# each position.

# %%
lesson.step("The two heads")
for layer, ((induction, previous), (induction0, previous0)) in enumerate(zip(scores, scores_untrained),
                                                                         start=1):
    print(f"  layer {layer}: induction score {induction[0]:.2f} (untrained {induction0[0]:.2f}), previous-token "
          f"score {previous[0]:.2f} (untrained {previous0[0]:.2f})")
induction_2, induction_2_untrained = float(scores[1][0].max()), float(scores_untrained[1][0].max())
lesson.check(f"layer 2 has an induction head (score above {INDUCTION_MIN})", induction_2 > INDUCTION_MIN,
             f"{induction_2:.2f}")
lesson.check("the untrained model has none (score below 0.2)", induction_2_untrained < 0.2,
             f"{induction_2_untrained:.2f}")
previous_1, previous_1_untrained = float(scores[0][1].max()), float(scores_untrained[0][1].max())
lesson.check("layer 1 leans on the previous token (score above 0.22; untrained below 0.2)",
             previous_1 > 0.22 and previous_1_untrained < 0.2, f"{previous_1:.2f}, untrained {previous_1_untrained:.2f}")

# %% [markdown]
# ## Switch layer 1 off
#
# Does layer 2 depend on layer 1? Its head's key at position $s$ must say which token came before $s$,
# and only layer 1 can have put that there.
#
# To test it, switch layer 1's attention off: set its output projection to 0, so that it adds nothing to
# the residual stream. Then measure again, and put the weights back.

# %%
lesson.step("Switch layer 1 off")
out_proj = model.blocks[0].self_attn.sublayer.out_proj
kept = out_proj.weight.data.copy(), out_proj.bias.data.copy()
out_proj.weight.data[...] = 0
out_proj.bias.data[...] = 0                                          # layer 1's attention now adds nothing
_, second_ablated, scores_ablated = measure(model, np.random.default_rng(1))
out_proj.weight.data[...], out_proj.bias.data[...] = kept            # and back
print(f"  layer 1's attention switched off: second half {second_ablated:.3f} nats (was {second_half:.3f}), "
      f"layer-2 induction score {float(scores_ablated[1][0].max()):.2f} (was {induction_2:.2f})")
lesson.check("without layer 1's attention the second half loses at least 1 nat",
             second_ablated - second_half > 1.0, f"{second_ablated:.3f} - {second_half:.3f}")
lesson.check("and the layer-2 head's induction score falls to less than half",
             float(scores_ablated[1][0].max()) < 0.5 * induction_2, f"{float(scores_ablated[1][0].max()):.2f}")

# %% [markdown]
# ## Picture: the loss and the heads
#
# One sequence with $L = 8$, and the mean loss over 500 such sequences: the loss at every position, and
# the attention weights of both layers, trained and untrained.

# %%
lesson.step("Picture: the loss and the heads")
x_show, y_show = repeated_halves(np.random.default_rng(7), 1, L_SHOW)
show_loss = {"trained": loss_per_position(model, x_show, y_show)}
weights_trained = [backend.to_numpy(b.self_attn.sublayer.weights)[0, 0] for b in model.blocks]     # [T, T]
show_loss["untrained"] = loss_per_position(untrained, x_show, y_show)
weights_untrained = [backend.to_numpy(b.self_attn.sublayer.weights)[0, 0] for b in untrained.blocks]
many_x, many_y = repeated_halves(np.random.default_rng(8), 500, L_SHOW)
mean_loss = {"trained": loss_per_position(model, many_x, many_y),
             "untrained": loss_per_position(untrained, many_x, many_y)}
panels = [(weights_untrained[0], "untrained, layer 1"), (weights_trained[0], "trained, layer 1: recent tokens"),
          (weights_untrained[1], "untrained, layer 2"), (weights_trained[1], "trained, layer 2: induction")]
lesson.figure(plots.induction_head(mean_loss, panels, x_show[0], V, L_SHOW, len(many_x)), "19_induction_head")

# %% [markdown]
# What to look for:
#
# - left: where the repeat starts, the trained model's loss drops far below $\ln V$; the untrained model
#   stays at $\ln V$ everywhere;
# - trained layer 1: the weight spread over the last few positions;
# - trained layer 2: in the second half, a diagonal $L - 1$ places back, the key one position after the
#   earlier copy of the query's own token.

# %% [markdown]
# ## The prompt is the program
#
# Give the trained model the first half of a sequence it has never seen, then its first token again. Let
# it write the rest greedily: the most likely token, appended, fed back.
#
# The same weights continue any such prompt with its own tokens: what to write is read from the context.
# The untrained model, given the same prompts, writes tokens unrelated to them.

# %%
lesson.step("The prompt is the program")


def continue_greedily(model, prompt, n_new):
    tokens = np.array(prompt)[None, :]                                   # [1, T]
    for _ in range(n_new):
        logits = backend.to_numpy(model(backend.asarray(tokens))[0])     # [1, T, V]
        tokens = np.concatenate([tokens, logits[:, -1:].argmax(axis=-1)], axis=1)
    return tokens[0, len(prompt):].tolist()


prompt_rng = np.random.default_rng(9)
copied = copied_untrained = total = 0
for k in range(20):
    L = int(prompt_rng.integers(L_MIN, L_MAX + 1))
    first = prompt_rng.integers(V, size=L).tolist()
    prompt = first + first[:1]
    written = continue_greedily(model, prompt, L - 1)
    written_untrained = continue_greedily(untrained, prompt, L - 1)
    copied += sum(a == b for a, b in zip(written, first[1:]))
    copied_untrained += sum(a == b for a, b in zip(written_untrained, first[1:]))
    total += L - 1
    if k < 3:
        print(f"  prompt {prompt}  ->  writes {written}  (expected {first[1:]})")
print(f"  20 new prompts: {copied}/{total} tokens written as in the first half ({copied / total:.0%}); "
      f"untrained: {copied_untrained}/{total}")
lesson.check("the trained model continues new prompts with their own tokens (over 70% right)",
             copied / total > 0.7, f"{copied / total:.0%}")
lesson.check("the untrained model does not (under 20%)", copied_untrained / total < 0.2,
             f"{copied_untrained / total:.0%}")

# %% [markdown]
# ## One layer is not enough
#
# The same training (1200 iterations) for a GPT with one layer. Can its single attention layer do the
# task?
#
# - It can find the earlier copy of the current token: its query and that key hold the same token.
# - But it needs the position **after** it, whose token is unrelated to the current one. Knowing "the
#   token before me was a" requires an earlier layer to have written it there.
#
# What one layer can do is narrow its guess to the tokens of the context: spread its attention over the
# first half and predict one of the tokens it finds there. That is worth about
# $\ln(\text{number of distinct tokens in the first half})$ nats: far below $\ln V$, and far above what
# the two-layer model pays.

# %%
lesson.step("One layer is not enough")
if lesson.quick:
    # the one-layer model means something only after the same 1200 iterations; --quick keeps its seconds
    print("  (--quick: the one-layer model is trained and checked in the full lesson only)")
else:
    one_layer = make_model(1)
    train(one_layer, S["iters"])
    first_one, second_one, _ = measure(one_layer, np.random.default_rng(1))
    bag_rng = np.random.default_rng(1)
    in_context = np.mean([np.log(len(set(bag_rng.integers(V, size=L).tolist()))) for L in (6, 8, 10) for _ in range(200)])
    print(f"  one layer:  first half {first_one:.3f}, second half {second_one:.3f} nats;  two layers: second half "
          f"{second_half:.3f};  a guess among the tokens of the context: ln(distinct tokens) = {in_context:.3f}")
    lesson.check("one layer cannot pick the right token of the context: its second half stays above 1.5 nats",
                 second_one > 1.5, f"{second_one:.3f}")
    lesson.check("two layers do at least 1 nat better there", second_one - second_half > 1.0,
                 f"{second_one:.3f} - {second_half:.3f}")

# %%
lesson.done()
