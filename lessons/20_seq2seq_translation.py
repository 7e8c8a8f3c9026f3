# %% [markdown]
"""Lesson 20: An encoder-decoder learns a toy translation: reversing strings.

The task of scripts/train_seq2seq.py: translate a string of letters into the same string reversed,
"attention" -> "noitnetta". To write output character t the decoder must find source character L-1-t,
and the only way it can see the source is cross-attention. So the cross-attention weights of a trained
model should form an anti-diagonal: the picture of the model having learned where to look.

The lesson imports the task's data, evaluation and heatmap functions from tinytransformer/tasks/reversal.py and
trains the library's Seq2Seq with the same loop (--quick: a small model on strings of 3-6 letters, about
a second of training; full: the script's model on 3-10 letters).

Run:  python lessons/20_seq2seq_translation.py        (add --no-pause to run straight through)
"""

# %%
import time

import numpy as np

from _lesson import Lesson

from tinytransformer import AdamW, backend, clip_grad_norm, cosine_lr
from tinytransformer.models import Seq2Seq, Seq2SeqConfig
from tinytransformer.tasks import reversal as task  # PAD, BOS, EOS, ITOS, encode, exact_match_accuracy, ...

lesson = Lesson("20 Encoder-decoder: a toy translation", __doc__, steps=5)

if lesson.quick:
    settings = {"n_layer": 1, "n_embd": 32, "n_head": 4, "min_len": 3, "max_len": 6, "n_train": 3000,
                "n_test": 300, "batch_size": 32, "iters": 200, "lr": 5e-3, "min_lr": 5e-4, "warmup_iters": 20,
                "log_interval": 25}
else:  # the script's model, for fewer iterations than its 1500
    settings = {"n_layer": 2, "n_embd": 64, "n_head": 4, "min_len": 3, "max_len": 10, "n_train": 10000,
                "n_test": 1000, "batch_size": 64, "iters": 600, "lr": 2e-3, "min_lr": 2e-4, "warmup_iters": 60,
                "log_interval": 50}
S = settings

# %%
lesson.step("The data", f"""
    Random strings of {S['min_len']}-{S['max_len']} letters, all distinct; {S['n_train']} for training and
    {S['n_test']} held out, never seen in training. One vocabulary of {len(task.ITOS)} tokens: PAD = 0,
    BOS = 1, EOS = 2, then a..z. For x = "abc": the encoder reads src = x + EOS; the decoder is trained
    with teacher forcing, reading tgt_in = BOS + y and predicting targets = y + EOS (y = x reversed), every
    position at once under the causal mask. PAD fills each row to a fixed width and is masked in
    attention and ignored by the loss.""")
rng = np.random.default_rng(1337)
strings = task.unique_random_strings(S["n_train"] + S["n_test"], rng, S["min_len"], S["max_len"])
train_strings, test_strings = strings[:S["n_train"]], strings[S["n_train"]:]
width = S["max_len"] + 1                                             # the longest x + EOS
train, test = task.encode(train_strings, width), task.encode(test_strings, width)
src, tgt_in, targets = task.encode(["attend"], width)                # one example, [1, width] each
for name, row in (("src", src), ("tgt_in", tgt_in), ("targets", targets)):
    print(f"  {name:<8} {row[0].tolist()}  = {' '.join(task.ITOS[i] for i in row[0])}")
n = len("attend")
lesson.check("tgt_in is BOS, then targets shifted right by one (the decoder never reads EOS)",
             tgt_in[0, 0] == task.BOS and (tgt_in[0, 1:n + 1] == targets[0, :n]).all())
lesson.check("targets spell the source reversed, then EOS",
             task.to_text(task.until_eos(targets[0].tolist())) == "attend"[::-1])
lesson.check("no held-out string is in the training set", not set(train_strings) & set(test_strings))

# %%
lesson.step("The model", f"""
    Seq2Seq: {S['n_layer']} encoder block(s) (bidirectional over the source) and {S['n_layer']} decoder
    block(s) (causal self-attention, then cross-attention over the encoder's output), n_embd =
    {S['n_embd']}, {S['n_head']} heads. Positions are learned vectors. With the fixed sinusoidal table
    (try `python scripts/train_seq2seq.py --positional sinusoidal`) the script's model sits on a plateau
    near loss 2.8 for about 900 iterations before it finds the task; learned positions are free to
    become whatever makes "output t looks at source L-1-t" easy to compute.""")
config = Seq2SeqConfig(src_vocab_size=len(task.ITOS), tgt_vocab_size=len(task.ITOS), block_size=width,
                       n_encoder_layer=S["n_layer"], n_decoder_layer=S["n_layer"], n_head=S["n_head"],
                       n_embd=S["n_embd"], positional="learned", pad_id=task.PAD, seed=1337)
model = Seq2Seq(config)
optimizer = AdamW(model.named_parameters(), lr=S["lr"], weight_decay=0.01)
print(f"  {model.num_parameters():,} parameters")

# %%
lesson.step("Training", f"""
    The loop of scripts/train_seq2seq.py: a random batch of {S['batch_size']} examples, forward with the
    loss, zero the gradients, backward, clip the gradient norm to 1, AdamW step with a warmed-up cosine
    learning rate; {S['iters']} iterations. A model that ignores the source can at best learn which
    letters and lengths are common: its loss stays near ln 26 ≈ 3.3 per letter. Falling well below
    that requires reading the source through cross-attention.""")
losses, held_out = [], []
t0 = time.perf_counter()
for it in range(S["iters"]):
    ix = rng.integers(len(train_strings), size=S["batch_size"])
    batch = [backend.asarray(a[ix]) for a in train]                   # src, tgt_in, targets: [B, width] each
    lr = cosine_lr(it, lr=S["lr"], min_lr=S["min_lr"], warmup_iters=S["warmup_iters"],
                   lr_decay_iters=S["iters"])
    _, loss = model(*batch)
    model.zero_grad()
    model.backward()
    clip_grad_norm(model.parameters(), 1.0)
    optimizer.step(lr=lr)
    losses.append(float(loss))
    if it % S["log_interval"] == 0 or it == S["iters"] - 1:
        held_out.append((it, task.held_out_loss(model, test)))
        print(f"  iter {it}: loss {losses[-1]:.4f}, held-out loss {held_out[-1][1]:.4f}, lr {lr:.2e}")
seconds = time.perf_counter() - t0
start_loss, end_loss = np.mean(losses[:5]), np.mean(losses[-10:])
print(f"  {S['iters']} iterations in {seconds:.1f} s; loss {start_loss:.3f} (first 5) -> "
      f"{end_loss:.3f} (last 10)")
lesson.check("the training loss falls to less than half its starting value", end_loss < 0.5 * start_loss,
             f"{start_loss:.3f} -> {end_loss:.3f}")
lesson.check("so does the loss on held-out strings", held_out[-1][1] < 0.5 * held_out[0][1],
             f"{held_out[0][1]:.3f} -> {held_out[-1][1]:.3f}")

# %%
lesson.step("Translating unseen strings", """
    At inference there is no target to read: greedy_decode encodes the source once, then starts from BOS
    and appends the most likely token until EOS, feeding its own outputs back in. A prediction counts
    only if the whole output equals the reversed string (exact match).""")
accuracy, predictions = task.exact_match_accuracy(model, test_strings, test)
for s, prediction in list(zip(test_strings, predictions))[:5]:
    output = task.to_text(prediction)
    print(f"  {s:>{S['max_len']}} -> {output:<{S['max_len']}} {'ok' if output == s[::-1] else 'wrong'}")
print(f"  held-out exact-match accuracy: {accuracy:.3f} "
      f"({round(accuracy * len(test_strings))}/{len(test_strings)})")
if not lesson.quick:
    lesson.check("held-out exact-match accuracy is above 95%", accuracy > 0.95, f"{accuracy:.3f}")
else:
    print("  (--quick: the accuracy is reported; the full run checks it)")

# %%
lesson.step("Where the decoder looks", """
    Run the model once on a held-out example, teacher-forced with its own prediction, and read the
    cross-attention weights of the last decoder block: [h, T_tgt, T_src], one row per output position.
    Reversal predicts an anti-diagonal: output t (the letter x[L-1-t]) looks at source position L-1-t.
    (The last row writes EOS; it has no letter to copy, and may look anywhere.) The script's plot
    shows every head; the lesson's figure shows their mean beside the loss curve.""")
example = max(test_strings[:100], key=len)                           # a long example shows the pattern best
prediction = predictions[test_strings.index(example)]
heads_path = lesson.out / "20_cross_attention_heads.png"
task.plot_cross_attention(model, example, prediction, heads_path)    # also leaves the weights in the model
lesson.figure_file(heads_path, "every head, by scripts/train_seq2seq.py")
weights = backend.to_numpy(model.decoder_blocks[-1].cross_attn.sublayer.weights)[0]   # [h, T_tgt, T_src]
mean_weights = weights.mean(axis=0)                                  # [T_tgt, T_src]
L = len(example)
rows = min(len(prediction), L)
on_diagonal = np.array([mean_weights[t, L - 1 - t] for t in range(rows)])
hits = sum(int(mean_weights[t].argmax() == L - 1 - t) for t in range(rows))
print(f"  example {example!r} -> {task.to_text(prediction)!r}")
print(f"  mean weight on the anti-diagonal source position: {on_diagonal.mean():.2f} (uniform would be "
      f"{1 / (L + 1):.2f}); rows whose largest weight is there: {hits}/{rows}")
lesson.check("cross-attention puts more weight on the anti-diagonal than a uniform spread would",
             on_diagonal.mean() > 1 / (L + 1), f"{on_diagonal.mean():.2f} > {1 / (L + 1):.2f}")
lesson.check("in at least 80% of the rows the largest weight is on the anti-diagonal", hits >= 0.8 * rows,
             f"{hits}/{rows}")

import matplotlib.pyplot as plt  # noqa: E402

fig, (ax_loss, ax_attn) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
ax_loss.plot(losses, lw=0.8, alpha=0.6, label="train (one batch)")
ax_loss.plot(*zip(*held_out), "o-", label="held-out")
ax_loss.axhline(np.log(26), color="gray", linestyle="--", lw=1, label="ln 26: guessing letters")
ax_loss.set_yscale("log")
ax_loss.set(xlabel="iteration", ylabel="cross-entropy (nats per token)",
            title="Seq2Seq learning to reverse strings")
ax_loss.grid(alpha=0.3, which="both")
ax_loss.legend()
src_labels = list(example) + ["<eos>"]
out_labels = [task.ITOS[i] for i in prediction] + ["<eos>"]
ax_attn.imshow(mean_weights, cmap="viridis", vmin=0, vmax=1)
ax_attn.set_xticks(range(len(src_labels)), src_labels)
ax_attn.set_yticks(range(len(out_labels)), out_labels)
ax_attn.set(xlabel="source (keys, values: the encoder's memory)", ylabel="output (queries: the decoder)",
            title="cross-attention, last decoder block, mean of heads")
fig.tight_layout()
lesson.figure(fig, "20_seq2seq_loss_and_cross_attention")

lesson.done()
