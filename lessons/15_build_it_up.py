# %% [markdown]
"""Lesson 15: Build it up, one idea at a time.

The GPT of lesson 16 is a stack of ideas: attention, several heads, a feed-forward network, depth,
residual connections, LayerNorm. This lesson adds them one at a time, in the order of Andrej Karpathy's
"Let's build GPT", and trains every stage on Tiny Shakespeare with one fixed budget: the same number of
iterations, the same batches in the same order, the same context and the same optimiser. Each stage is a
``StageModel`` (tinytransformer/models/buildup.py) built from the library's layers, and differs from the
one before by exactly the idea named:

    1 bigram          logits = E[idx] W: the next character from the current one alone
    2 + one head      + positions and one causal self-attention head
    3 + multi-head    the same attention split into 4 heads
    4 + MLP           a feed-forward network after the attention: one block
    5 × 4 blocks      four such blocks stacked, nothing else
    6 + residual      x + f(x) around every attention and MLP
    7 + LayerNorm     pre-norm LayerNorms and a final one: GPT's architecture

The measured validation losses make the story: what attention buys over the bigram, that depth alone
makes things worse, and that residual connections are what let the deeper stack train.

Run:  python lessons/15_build_it_up.py        (add --no-pause to run straight through)
"""

# %%
import math
import time
from collections import Counter

import numpy as np

from _lesson import Lesson
from tinytransformer.machine import one_blas_thread

from tinytransformer import AdamW, backend
from tinytransformer.data import TextDataset, find_shakespeare
from tinytransformer.models import GPT, GPTConfig, StageConfig, StageModel
from tinytransformer.models.buildup import gpt_names

lesson = Lesson("15 Build it up, one idea at a time", __doc__, steps=9)

# The budget, the same for every stage. --quick: the same models for fewer iterations (a few seconds).
N_EMBD, N_HEAD, N_LAYER = 32, 4, 4
CONTEXT, BATCH = 8, 32                     # Karpathy's block_size and batch_size
ITERS = 300 if lesson.quick else 500
LR = 5e-3                                  # AdamW, constant learning rate, no weight decay
EVAL_BATCHES = 40                          # the same validation windows for every stage (and the table)
ATTENTION_MARGIN = 0.05                    # nats below the counted bigram table: multi-head (full run only)
WIDE = 0.05 if lesson.quick else 0.15      # ... and the full model
SEED = 0

# %%
lesson.step("The budget and the yardsticks", f"""
    Every stage trains for {ITERS} iterations of AdamW (lr {LR:g}) on batches of {BATCH} windows of
    {CONTEXT} characters, drawn in the same order, and is measured on the same {EVAL_BATCHES} validation
    batches. Width n_embd = {N_EMBD}; {N_HEAD} heads where there are several; {N_LAYER} blocks where the
    stack is deep. Three yardsticks, from counting alone: the uniform guess ln V; the character
    frequencies (no context at all); and the best bigram table, the frequency of each character after
    each character, counted on the training split and measured on the validation split (add-one
    smoothing). Every stage before attention can at best reach that last number; going below it needs
    more than the previous character.""")
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


def train_stage(name, **switches):
    """Train StageModel(switches) on the fixed budget; record and print its losses."""
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
    results[name] = dict(model=model, losses=losses, train=train_loss, val=val_loss,
                         params=model.num_parameters(), seconds=time.perf_counter() - start)
    print(f"  {name}: {model.num_parameters():,} parameters;  loss {losses[0]:.3f} at the first batch -> "
          f"train {train_loss:.3f}, val {val_loss:.3f}  ({results[name]['seconds']:.1f} s)")
    return results[name]


# %%
lesson.step("Stage 1: the bigram model", f"""
    The simplest language model: each character's embedding E[idx] ([V, n_embd]) goes straight to the
    output layer W ([n_embd, V]), so the logits for the next character depend on the current character
    alone. It is a bigram table, factored through n_embd = {N_EMBD} numbers. Trained, it should land near
    the counted bigram table, and no lower.""")
bigram = train_stage("bigram", n_head=0)
NEAR = 0.15
lesson.check(f"the trained bigram model lands within {NEAR} nats of the counted bigram table (on the same "
             "windows)", abs(bigram["val"] - table_val) < NEAR,
             f"{bigram['val']:.3f} vs {table_val:.3f}")

# %%
lesson.step("Stage 2: one attention head, with positions", f"""
    Now each character may look back. A learned position vector is added to each embedding (attention
    alone cannot tell positions apart, lesson 04), and one causal self-attention head (head size
    n_embd = {N_EMBD}) lets position t gather a weighted average of the values of positions 0 .. t. Its
    output goes to the same output layer. There is no residual connection: the current character reaches
    the output only through the attention, by attending to itself.""")
one_head = train_stage("+ one head", n_head=1, n_layer=1)

# %%
lesson.step("Stage 3: multi-head attention", f"""
    The same attention, split into {N_HEAD} heads of size {N_EMBD // N_HEAD} (lesson 08): the same
    parameters, but {N_HEAD} separate softmaxes, so one position can attend to several places at once,
    e.g. to itself and to the start of the word.""")
multi_head = train_stage("+ multi-head", n_head=N_HEAD, n_layer=1)

# %%
lesson.step("Stage 4: the feed-forward network (MLP)", f"""
    After the attention has gathered, a position-wise MLP, GELU(x W₁) W₂ with a hidden width of
    4·n_embd = {4 * N_EMBD}, computes on what each position gathered (lesson 09). Attention is
    communication, the MLP computation: together they are one block.""")
mlp = train_stage("+ MLP", n_head=N_HEAD, n_layer=1, mlp=True)

# %%
lesson.step(f"Stage 5: {N_LAYER} blocks deep, nothing else", f"""
    More of the same should help: stack {N_LAYER} such blocks. It does not, at first. Without residual
    connections each block's output is all the next one gets, and the gradient reaching the first block
    has been multiplied by every later block's Jacobian: with the usual initial weights each block
    shrinks it, so the first blocks barely learn, and the stack trains far worse than one block did.""")
deep = train_stage(f"× {N_LAYER} blocks", n_head=N_HEAD, n_layer=N_LAYER, mlp=True)

# %%
lesson.step("Stage 6: residual connections", """
    Change one thing: every attention and every MLP adds its output to its input, x = x + f(x). The
    stack now has a path from the embeddings to the output that no block can block, and the gradient
    has a path back along which it is passed on unchanged (dx = dy + ..., lesson 10). Each block now
    only has to learn a correction.""")
residual = train_stage("+ residual", n_head=N_HEAD, n_layer=N_LAYER, mlp=True, residual=True)

# %%
lesson.step("Stage 7: LayerNorm, the full model", """
    Last, a LayerNorm before each attention and each MLP, and one before the output layer (pre-norm,
    as GPT-2 and nanoGPT). This is the architecture of the library's GPT: loaded into GPT (with an untied
    output layer), this stage's trained weights give the same logits. At this small depth and budget
    LayerNorm changes the loss little; its job is to keep the scale of every sublayer's input in check
    in deeper stacks and longer runs (lesson 10).""")
full = train_stage("+ LayerNorm", n_head=N_HEAD, n_layer=N_LAYER, mlp=True, residual=True, layernorm=True)
gpt = GPT(GPTConfig(vocab_size=V, block_size=CONTEXT, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD,
                    tie_weights=False))
gpt.load_state_dict(gpt_names(full["model"].state_dict()))
x, _ = dataset.get_batch("val", BATCH, CONTEXT, np.random.default_rng(7))
difference = float(abs(backend.to_numpy(gpt(x)[0]) - backend.to_numpy(full["model"](x)[0])).max())
lesson.check("the library's GPT, given this stage's trained weights, computes the same logits",
             difference < 1e-5, f"largest difference {difference:.1e}")

# %%
lesson.step("The table, and what it shows", """
    All stages side by side. Two more checks guard the whole table against the easiest way to get a
    low loss: seeing the answer. With the causal mask removed, position t could read character t + 1,
    which is its own target, and the loss would fall towards 0. So every stage's loss must stay well
    above 0, and for every trained stage, changing the characters after position t must leave the
    predictions at 0 .. t exactly as they were.""")
print(f"  {'stage':<14}{'parameters':>11}{'train':>8}{'val':>8}{'val − table':>13}")
for name, r in results.items():
    print(f"  {name:<14}{r['params']:>11,}{r['train']:>8.3f}{r['val']:>8.3f}{r['val'] - table_val:>+13.3f}")
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
lesson.check("with residuals, depth helps: the deep stack beats one block",
             residual["val"] < mlp["val"], f"{residual['val']:.3f} vs {mlp['val']:.3f}")
lesson.check("no stage sees the answer: every validation loss stays above 1.5 nats",
             min(r["val"] for r in results.values()) > 1.5,
             f"lowest {min(r['val'] for r in results.values()):.3f}")
later = np.random.default_rng(8).integers(0, V, size=x.shape)                     # other characters
cut = CONTEXT // 2
x_changed = backend.asarray(np.concatenate([backend.to_numpy(x)[:, :cut], later[:, cut:]], axis=1))
unchanged = []
for name, r in results.items():
    before, after = (backend.to_numpy(r["model"](ids)[0]) for ids in (x, x_changed))
    unchanged.append(np.array_equal(before[:, :cut], after[:, :cut]))
lesson.check(f"changing the characters after position {cut - 1} leaves every stage's predictions at "
             f"0 .. {cut - 1} bit for bit unchanged", all(unchanged),
             ", ".join(name for name, same in zip(results, unchanged) if not same))

import matplotlib.pyplot as plt  # noqa: E402

fig, (ax_bar, ax_curve) = plt.subplots(1, 2, figsize=(14, 4.8), layout="constrained")
names = list(results)
ax_bar.bar(names, [results[n]["val"] for n in names], color="tab:blue", label="validation loss")
ax_bar.plot(names, [results[n]["train"] for n in names], "o", color="black", label="training loss")
for value, label, style in ((unigram_entropy, "character frequencies", ":"),
                            (counted_bigram, "counted bigram table", "--")):
    ax_bar.axhline(value, color="gray", linestyle=style, lw=1, label=f"{label} {value:.2f}")
for i, n in enumerate(names):
    ax_bar.text(i, results[n]["val"] + 0.02, f"{results[n]['val']:.2f}", ha="center", fontsize=8)
ax_bar.set_ylim(2.0, max(unigram_entropy, max(results[n]["val"] for n in names)) + 0.15)
ax_bar.set(ylabel="cross-entropy (nats per character)",
           title=f"one budget: {ITERS} iterations, {BATCH}×{CONTEXT} characters each")
ax_bar.tick_params(axis="x", labelrotation=20)
ax_bar.legend(fontsize=8, loc="upper left")
window = 25
for n in names:
    smooth = np.convolve(results[n]["losses"], np.ones(window) / window, mode="valid")
    ax_curve.plot(np.arange(window - 1, ITERS), smooth, label=n)
ax_curve.axhline(counted_bigram, color="gray", linestyle="--", lw=1)
ax_curve.set_ylim(2.0, uniform + 0.1)
ax_curve.set(xlabel="iteration", ylabel=f"training loss (mean of the last {window} batches)",
             title="training curves")
ax_curve.grid(alpha=0.3)
ax_curve.legend(fontsize=8)
lesson.figure(fig, "15_build_it_up")

lesson.done()
