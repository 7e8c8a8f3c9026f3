# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 15: build it up, one idea at a time
#
# The GPT of lesson 16 is a stack of ideas: attention, several heads, a feed-forward network, depth,
# residual connections, LayerNorm. What does each one buy?
#
# We add them one at a time, in the order of Andrej Karpathy's "Let's build GPT", and train every stage
# on Tiny Shakespeare with **one fixed budget**: the same number of iterations, the same batches in the
# same order, the same context, the same optimiser. Each stage is a `StageModel`
# (`tinytransformer/models/buildup.py`) built from the library's layers, and differs from the one before
# by exactly the idea named:
#
# 1. **bigram**: $\mathrm{logits} = E[\mathrm{idx}]\, W$, the next character from the current one alone;
# 2. **+ one head**: + positions and one causal self-attention head;
# 3. **+ multi-head**: the same attention split into 4 heads;
# 4. **+ MLP**: a feed-forward network after the attention: one block;
# 5. **× 4 blocks**: four such blocks stacked, nothing else;
# 6. **+ residual**: $x + f(x)$ around every attention and MLP;
# 7. **+ LayerNorm**: pre-norm LayerNorms and a final one: GPT's architecture.
#
# Stage 6 also trains one **control**, not a stage: a single block with residual connections. Beside the
# four-block stack with them, it changes nothing but the depth.
#
# The measured validation losses tell the story:
#
# - what attention buys over the bigram;
# - that depth alone makes things worse;
# - that residual connections are what let the deeper stack train;
# - that with them, depth helps: four blocks beat one.
#
# Run: `python lessons/15_build_it_up.py` (add `--no-pause` to run straight through).

# %%
import math
import time
from collections import Counter

import numpy as np

from _lesson import Lesson
from _plots import lesson15 as plots
from tinytransformer.machine import one_blas_thread

from tinytransformer import AdamW, backend
from tinytransformer.data import TextDataset, find_shakespeare
from tinytransformer.models import GPT, GPTConfig, StageConfig, StageModel
from tinytransformer.models.buildup import gpt_names

lesson = Lesson("15 Build it up, one idea at a time", steps=12)

# The budget, the same for every stage. --quick: the same models for fewer iterations (a few seconds).
N_EMBD, N_HEAD, N_LAYER = 32, 4, 4
CONTEXT, BATCH = 8, 32                     # Karpathy's block_size and batch_size
ITERS = 300 if lesson.quick else 500
LR = 5e-3                                  # AdamW, constant learning rate, no weight decay
EVAL_BATCHES = 40                          # the same validation windows for every stage (and the table)
ATTENTION_MARGIN = 0.05                    # nats below the counted bigram table: multi-head (full run only)
WIDE = 0.05 if lesson.quick else 0.15      # ... and the full model
SEED = 0

# %% [markdown]
# ## The yardsticks
#
# What is a good loss? Before training anything, three yardsticks from counting alone, in nats per
# character:
#
# - the **uniform guess**, every one of the $V$ characters equally likely: $\ln V$;
# - the **character frequencies**, no context at all: their entropy $-\sum_c p_c \ln p_c$;
# - the best **bigram table**: the frequency of each character after each character, counted on the
#   training split and measured on the validation split (add-one smoothing).

# %%
lesson.step("The yardsticks")
text = find_shakespeare().read_text(encoding="utf-8")
dataset = TextDataset(text)
V = dataset.tokenizer.vocab_size
uniform = math.log(V)
frequencies = np.array(list(Counter(text).values()), dtype=np.float64) / len(text)
unigram_entropy = float(-(frequencies * np.log(frequencies)).sum())
pair_counts = np.zeros((V, V))
np.add.at(pair_counts, (dataset.train[:-1], dataset.train[1:]), 1)              # [V, V]: a followed by b
bigram_table = (pair_counts + 1) / (pair_counts + 1).sum(axis=1, keepdims=True)   # P(b | a)
counted_bigram = float(-np.log(bigram_table[dataset.val[:-1], dataset.val[1:]]).mean())
print(f"  uniform ln V = {uniform:.3f};  character frequencies {unigram_entropy:.3f};  "
      f"counted bigram table (val) {counted_bigram:.3f} nats")

# %% [markdown]
# A model that sees only the current character can at best reach the bigram table's number. Going below
# it needs more than the previous character.

# %% [markdown]
# ## The budget
#
# How do we compare ideas fairly? Every stage gets the same budget:
#
# - the same number of iterations of AdamW, at one constant learning rate, with no weight decay;
# - the same batches of windows, drawn in the same order;
# - the same width `n_embd`; the same number of heads where there are several, and of blocks where the
#   stack is deep;
# - the same validation batches to be measured on.
#
# The counted bigram table is scored on those very validation windows too: a yardstick free of their
# luck. `train_stage` trains one stage on this budget; each step below calls it with one more switch.

# %%
lesson.step("The budget")
print(f"  every stage: {ITERS} iterations of AdamW (lr {LR:g}) on batches of {BATCH} windows of {CONTEXT} "
      f"characters")
print(f"  width n_embd = {N_EMBD}; {N_HEAD} heads where there are several; {N_LAYER} blocks where the stack "
      f"is deep; measured on the same {EVAL_BATCHES} validation batches")


def evaluate(model, split):
    """Mean loss over EVAL_BATCHES fixed windows of a split (the same windows for every stage)."""
    rng = np.random.default_rng(1000)
    return float(np.mean([float(model(*dataset.get_batch(split, BATCH, CONTEXT, rng))[1])
                          for _ in range(EVAL_BATCHES)]))


def evaluate_table():
    """The counted bigram table's loss on the very windows evaluate() uses: a yardstick free of their luck."""
    rng = np.random.default_rng(1000)
    losses = []
    for _ in range(EVAL_BATCHES):
        x, y = (backend.to_numpy(ids) for ids in dataset.get_batch("val", BATCH, CONTEXT, rng))
        losses.append(float(-np.log(bigram_table[x, y]).mean()))
    return float(np.mean(losses))


table_val = evaluate_table()
print(f"  the counted bigram table on the {EVAL_BATCHES} validation batches every stage is measured on: "
      f"{table_val:.3f}")
results = {}   # stage name -> dict(model, losses, train, val, params, seconds)
controls = {}  # the same, for a model trained beside the stages to isolate one idea (not a stage itself)


def train_stage(name, into=results, **switches):
    """Train StageModel(switches) on the fixed budget; record its losses in `into` and print them."""
    model = StageModel(StageConfig(vocab_size=V, block_size=CONTEXT, n_embd=N_EMBD, seed=SEED, **switches))
    optimizer = AdamW(model.named_parameters(), lr=LR, weight_decay=0.0)
    batches = np.random.default_rng(SEED)          # every stage sees the same batches in the same order
    losses = []
    start = time.perf_counter()
    with one_blas_thread():                        # small matrices: one BLAS thread is fastest
        for it in range(ITERS):
            x, y = dataset.get_batch("train", BATCH, CONTEXT, batches)
            model.zero_grad()
            _, loss = model(x, y)
            losses.append(float(loss))
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(f"stage {name!r}: the loss is {losses[-1]} at iteration {it}")
            model.backward()
            optimizer.step()
        train_loss, val_loss = evaluate(model, "train"), evaluate(model, "val")
    into[name] = dict(model=model, losses=losses, train=train_loss, val=val_loss,
                      params=model.num_parameters(), seconds=time.perf_counter() - start)
    print(f"  {name}: {model.num_parameters():,} parameters;  loss {losses[0]:.3f} at the first batch -> "
          f"train {train_loss:.3f}, val {val_loss:.3f}  ({into[name]['seconds']:.1f} s)")
    return into[name]


# %% [markdown]
# ## Stage 1: the bigram model
#
# What is the simplest language model? Each character's embedding goes straight to the output layer:
#
# $$\mathrm{logits} = E[\mathrm{idx}]\, W, \qquad E: [V, n_{embd}], \quad W: [n_{embd}, V]$$
#
# The logits for the next character depend on the current character alone. It is a bigram table,
# factored through `n_embd` numbers. Trained, it should land near the counted bigram table, and no lower.

# %%
lesson.step("Stage 1: the bigram model")
bigram = train_stage("bigram", n_head=0)
NEAR = 0.15
lesson.check(f"the trained bigram model lands within {NEAR} nats of the counted bigram table (on the same "
             "windows)", abs(bigram["val"] - table_val) < NEAR,
             f"{bigram['val']:.3f} vs {table_val:.3f}")

# %% [markdown]
# ## Stage 2: one attention head, with positions
#
# Now each character may look back. Two additions:
#
# - a learned **position vector** added to each embedding: attention alone cannot tell positions apart
#   (lesson 04);
# - one **causal self-attention head**, of head size `n_embd`: position $t$ gathers a weighted average of
#   the values of positions $0 \ldots t$.
#
# Its output goes to the same output layer. There is no residual connection: the current character
# reaches the output only through the attention, by attending to itself.

# %%
lesson.step("Stage 2: one attention head, with positions")
one_head = train_stage("+ one head", n_head=1, n_layer=1)

# %% [markdown]
# ## Stage 3: multi-head attention
#
# The same attention, split into `n_head` heads of size `n_embd / n_head` (lesson 08):
#
# - the same parameters;
# - but `n_head` separate softmaxes, so one position can attend to several places at once, e.g. to
#   itself and to the start of the word.

# %%
lesson.step("Stage 3: multi-head attention")
print(f"  {N_HEAD} heads of size {N_EMBD // N_HEAD}")
multi_head = train_stage("+ multi-head", n_head=N_HEAD, n_layer=1)

# %% [markdown]
# ## Stage 4: the feed-forward network (MLP)
#
# The attention has gathered; what computes on what each position gathered? A position-wise MLP
# (lesson 09), with a hidden width of $4 \cdot n_{embd}$:
#
# $$\mathrm{MLP}(x) = \mathrm{GELU}(x W_1)\, W_2$$
#
# Attention is communication, the MLP computation. Together they are one block.

# %%
lesson.step("Stage 4: the feed-forward network (MLP)")
print(f"  MLP hidden width 4·n_embd = {4 * N_EMBD}")
mlp = train_stage("+ MLP", n_head=N_HEAD, n_layer=1, mlp=True)

# %% [markdown]
# ## Stage 5: 4 blocks deep, nothing else
#
# More of the same should help: stack `n_layer` such blocks, with nothing between them. Does it?

# %%
lesson.step("Stage 5: 4 blocks deep, nothing else")
deep = train_stage(f"× {N_LAYER} blocks", n_head=N_HEAD, n_layer=N_LAYER, mlp=True)

# %% [markdown]
# Not at first: the stack trains far worse than one block did. Without residual connections:
#
# - each block's output is all the next one gets;
# - the gradient reaching the first block has been multiplied by every later block's Jacobian. With the
#   usual initial weights each block shrinks it, so the first blocks barely learn.

# %% [markdown]
# ## Stage 6: residual connections
#
# Change one thing: every attention and every MLP adds its output to its input,
#
# $$x \leftarrow x + f(x)$$
#
# - forward, the stack now has a path from the embeddings to the output that no block can block;
# - backward, the gradient has a path along which it is passed on unchanged ($dx = dy + \ldots$,
#   lesson 10).
#
# Each block now only has to learn a correction.
#
# Does depth help now? Stage 4's single block has no residuals, so beating it would not tell depth from
# residuals. The fair comparison is one block **with** residual connections, on the same budget: the
# control, trained here too. It differs from this stage in the number of blocks alone.

# %%
lesson.step("Stage 6: residual connections")
residual = train_stage("+ residual", n_head=N_HEAD, n_layer=N_LAYER, mlp=True, residual=True)
one_residual = train_stage("1 block + residual", into=controls, n_head=N_HEAD, n_layer=1, mlp=True,
                           residual=True)

# %% [markdown]
# ## Stage 7: LayerNorm, the full model
#
# Last, a LayerNorm before each attention and each MLP, and one before the output layer: pre-norm, as in
# GPT-2 and nanoGPT.
#
# This is the architecture of the library's `GPT`. The proof: load this stage's trained weights into
# `GPT` (with an untied output layer), and it gives the same logits.

# %%
lesson.step("Stage 7: LayerNorm, the full model")
full = train_stage("+ LayerNorm", n_head=N_HEAD, n_layer=N_LAYER, mlp=True, residual=True, layernorm=True)
gpt = GPT(GPTConfig(vocab_size=V, block_size=CONTEXT, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD,
                    tie_weights=False))
gpt.load_state_dict(gpt_names(full["model"].state_dict()))
x, _ = dataset.get_batch("val", BATCH, CONTEXT, np.random.default_rng(7))
difference = float(abs(backend.to_numpy(gpt(x)[0]) - backend.to_numpy(full["model"](x)[0])).max())
lesson.check("the library's GPT, given this stage's trained weights, computes the same logits",
             difference < 1e-5, f"largest difference {difference:.1e}")

# %% [markdown]
# At this small depth and budget LayerNorm changes the loss little. Its job is to keep the scale of every
# sublayer's input in check in deeper stacks and longer runs (lesson 10).

# %% [markdown]
# ## The table, and what it shows
#
# All stages side by side. The column `val − table` is each stage's validation loss minus the counted
# bigram table's, on the same windows. What should the table show?
#
# - **attention helps**: multi-head attention gets below the table (checked in the full run);
# - the full model beats the table by a wide margin;
# - **depth alone hurts**: four blocks without residuals are worse than one block;
# - **residuals make the deep stack train**;
# - **with residuals, depth helps**: the four blocks beat the control, one block with residuals, on the
#   same budget.

# %%
lesson.step("The table, and what it shows")
print(f"  {'stage':<20}{'parameters':>11}{'train':>8}{'val':>8}{'val − table':>13}")
for name, r in {**results, **controls}.items():
    if name in controls:
        print("  control:")
    print(f"  {name:<20}{r['params']:>11,}{r['train']:>8.3f}{r['val']:>8.3f}{r['val'] - table_val:>+13.3f}")
print(f"  (counted bigram table {table_val:.3f} on these windows, {counted_bigram:.3f} on the whole val split; "
      f"character frequencies {unigram_entropy:.3f}, ln V {uniform:.3f})")
if lesson.quick:
    print(f"  (--quick: {ITERS} iterations bring one block of attention only level with the counted table; "
          f"the full run's {500} take it below, and check that)")
else:
    lesson.check(f"attention helps: multi-head attention gets more than {ATTENTION_MARGIN} nats below the counted "
                 "bigram table, the best a model of the current character alone can do",
                 multi_head["val"] < table_val - ATTENTION_MARGIN, f"{multi_head['val']:.3f} vs {table_val:.3f}")
lesson.check(f"the full model beats the counted bigram table by a wide margin (more than {WIDE} nats)",
             full["val"] < table_val - WIDE, f"{full['val']:.3f} vs {table_val:.3f}")
lesson.check(f"depth alone hurts: {N_LAYER} blocks without residuals are worse than one block, by more than "
             "0.3 nats", deep["val"] > mlp["val"] + 0.3, f"{deep['val']:.3f} vs {mlp['val']:.3f}")
lesson.check(f"residuals make the deep stack train: with them the {N_LAYER} blocks beat the same stack "
             "without them by more than 0.5 nats",
             residual["val"] < deep["val"] - 0.5, f"{residual['val']:.3f} vs {deep['val']:.3f}")
lesson.check(f"with residuals, depth helps: {N_LAYER} blocks beat 1 block, both with residuals",
             residual["val"] < one_residual["val"], f"{residual['val']:.3f} vs {one_residual['val']:.3f}")

# %% [markdown]
# ## Could a stage see the answer?
#
# The easiest way to a low loss is seeing the answer. With the causal mask removed, position $t$ could
# read character $t + 1$, which is its own target, and the loss would fall towards 0. Two checks guard
# the whole table:
#
# - every stage's validation loss stays well above 0 (and the control's);
# - for every trained stage and the control, changing the characters after position $t$ leaves the predictions at
#   $0 \ldots t$ exactly as they were.

# %%
lesson.step("Could a stage see the answer?")
trained = {**results, **controls}
lesson.check("no stage sees the answer: every validation loss stays above 1.5 nats",
             min(r["val"] for r in trained.values()) > 1.5,
             f"lowest {min(r['val'] for r in trained.values()):.3f}")
later = np.random.default_rng(8).integers(0, V, size=x.shape)                     # other characters
cut = CONTEXT // 2
x_changed = backend.asarray(np.concatenate([backend.to_numpy(x)[:, :cut], later[:, cut:]], axis=1))
unchanged = []
for name, r in trained.items():
    before, after = (backend.to_numpy(r["model"](ids)[0]) for ids in (x, x_changed))
    unchanged.append(np.array_equal(before[:, :cut], after[:, :cut]))
lesson.check(f"changing the characters after position {cut - 1} leaves every stage's predictions at "
             f"0 .. {cut - 1} bit for bit unchanged", all(unchanged),
             ", ".join(name for name, same in zip(trained, unchanged) if not same))

# %% [markdown]
# ## Picture: one budget, seven stages
#
# - left: each stage's validation loss (bars) and training loss (dots), against two counted yardsticks,
#   the character frequencies (dotted) and the bigram table on the whole val split (dashed); the last,
#   grey bar is the control, one block with residuals;
# - right: the training curves, each point the mean of the last 25 batches (the control's dashed).

# %%
lesson.step("Picture: one budget, seven stages")
lesson.figure(plots.build_it_up(results, unigram_entropy, counted_bigram, uniform, ITERS, BATCH, CONTEXT,
                                controls=controls), "15_build_it_up")

# %% [markdown]
# The tall bar is depth without residuals. The two bars after it are the same stack with residuals, then
# with LayerNorm too. The grey control, one block with residuals, stands above the four-block stack with
# them: with residuals, the depth pays.

# %%
lesson.done()
