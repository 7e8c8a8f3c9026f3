# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 18: what the model learned: its embeddings, its contextual vectors, its heads
#
# Lesson 16 trained a character GPT. Here we open it, in three places:
#
# - **the embedding table** $E$, `[V, d]`: one vector per character, before any context. Which lie close?
# - **the vector after block 1**: the same character at the same position, in different contexts.
# - **the attention weights**: what each head of block 1 looks at, on real lines of text.
#
# A character has no meaning of its own to look for, so one step trains a small **word** model here and
# asks whether directions between words carry meaning: king − man + woman.
#
# Each place is compared with the same model **before training**: the same config and seed, so the very
# weights training started from. Each finding is checked against the untrained model, which must fail
# the same check. A pattern that the untrained model shows too is a property of the architecture or of
# the data, not something learned.
#
# The model is lesson 16's, from `<out>/16_train_gpt/ckpt.npz` when that is there (run lesson 16 first,
# with the same `--out`). Otherwise one is trained here: with `--quick` a small one for a few seconds,
# without it lesson 16's full recipe (a few minutes).
#
# Run: `python lessons/18_what_the_model_learned.py` (add `--no-pause` to run straight through).

# %%
import itertools
import re

import numpy as np
from _lesson import Lesson
from _plots import lesson18 as plots

from tinytransformer import AdamW, Embedding, Linear, backend
from tinytransformer.data import TextDataset, find_shakespeare, read_text
from tinytransformer.layers.attention import causal_mask
from tinytransformer.machine import one_blas_thread
from tinytransformer.models import GPT, GPTConfig
from tinytransformer.training import TrainConfig, train
from tinytransformer.training.checkpoint import load_checkpoint, restore

lesson = Lesson("18 What the model learned", steps=9)
FULL_RUN_ITERS = 2000   # lesson 16's full run: the checks marked "full run" need a model trained this long


def unit(vectors):
    """Rows scaled to length 1, so that dot products are cosine similarities."""
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)

# %% [markdown]
# ## The trained model, and the same model untrained
#
# What do we compare the trained model with?
#
# - The checkpoint holds the config, the weights and the tokenizer.
# - Building `GPT(config)` without restoring the weights gives the model as it was at iteration 0:
#   GPT-2's initialisation, drawn from the config's seed.
#
# Everything below is measured on both.

# %%
lesson.step("The trained model, and the same model untrained")
checkpoint_path = lesson.out / "16_train_gpt" / "ckpt.npz"
if checkpoint_path.exists():
    print(f"  using lesson 16's model: {checkpoint_path}")
else:
    out_dir = lesson.out / "18_model"
    if lesson.quick:
        cfg = TrainConfig(n_layer=2, n_head=4, n_embd=64, block_size=32, batch_size=16, max_iters=60,
                          lr=1e-2, min_lr=1e-3, warmup_iters=10, lr_decay_iters=60, eval_interval=60,
                          eval_iters=5, log_interval=50, sample_chars=10)
    else:   # lesson 16's full run
        cfg = TrainConfig(max_iters=FULL_RUN_ITERS, eval_interval=250, eval_iters=20, log_interval=100,
                          sample_chars=10)
    cfg.out_dir, cfg.seed, cfg.overwrite = str(out_dir), 1337, True
    print(f"  no {checkpoint_path}; training a model in {out_dir} ({cfg.max_iters} iterations)")
    train(cfg, log=lambda line: print("    " + line))
    checkpoint_path = out_dir / "ckpt.npz"
checkpoint = load_checkpoint(checkpoint_path)
config = GPTConfig(**checkpoint.config["model"])
model, untrained = GPT(config), GPT(config)
restore(checkpoint, model)
model.eval()
untrained.eval()
data = TextDataset(read_text(find_shakespeare()))
tokenizer = data.tokenizer
if tokenizer.chars != checkpoint.tokenizer["chars"]:
    raise SystemExit(f"{checkpoint_path} was not trained on Tiny Shakespeare's 65 characters")
V, T = config.vocab_size, config.block_size
full_run = checkpoint.config["train"]["max_iters"] >= FULL_RUN_ITERS
print(f"  {model.num_parameters():,} parameters: n_layer {config.n_layer}, n_head {config.n_head}, "
      f"n_embd {config.n_embd}, context {T}; trained {checkpoint.config['train']['max_iters']} iterations, "
      f"val loss {checkpoint.extra['best_val_loss']:.3f}")
if not full_run:
    print(f"  (not lesson 16's full run of {FULL_RUN_ITERS} iterations: the checks marked 'full run' are "
          "skipped, the others hold for this model too)")

# %% [markdown]
# ## Character embeddings
#
# Row $c$ of the embedding table $E$ is what the model knows about character $c$ with no context at all.
#
# Why should similar characters get similar rows? The output layer reuses $E$ (weight tying): the logit
# of $c$ is $h \cdot E_c$. So characters that can follow the same contexts are pulled towards the same
# directions.
#
# How alike two rows are is their cosine similarity:
#
# $$\cos(a, b) = \frac{E_a \cdot E_b}{\|E_a\| \, \|E_b\|}$$
#
# Before training the rows are independent random draws: every cosine is near 0 (about
# $\pm 1/\sqrt{d}$), and no structure can show. Below, the nearest neighbours of a few characters in the
# trained table.

# %%
lesson.step("Character embeddings")
classes = {"vowel": "aeiou", "consonant": "bcdfghjklmnpqrstvwxyz", "Vowel": "AEIOU",
           "Consonant": "BCDFGHJKLMNPQRSTVWXYZ", "space / newline": " \n", "punctuation": ",.;:!?'-&$3"}
colours = {"vowel": "tab:red", "consonant": "tab:blue", "Vowel": "tab:orange", "Consonant": "tab:cyan",
           "space / newline": "black", "punctuation": "tab:green"}
vowels = [tokenizer.stoi[c] for c in "aeiou"]
consonants = [tokenizer.stoi[c] for c in "bcdfghjklmnpqrstvwxyz"]
lower = "abcdefghijklmnopqrstuvwxyz"
frequency = np.bincount(data.train, minlength=V) / len(data.train)       # [V]
matched = []                                 # for each vowel, most common first: the nearest consonant
for v in sorted(vowels, key=lambda i: -frequency[i]):                    # in log frequency, not yet taken
    matched.append(min((c for c in consonants if c not in matched),
                       key=lambda c: abs(np.log(frequency[c] / frequency[v]))))


def spearman(a, b):
    """Rank correlation: +1 when b orders the items exactly as a does, about 0 for unrelated orders."""
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def embedding_scores(m):
    """Summaries of the embedding table: how well its first principal direction orders the characters by
    frequency; mean cosines among the vowels, of vowels with all consonants and with frequency-matched
    ones; a letter with its capital vs with the other capitals."""
    table = backend.to_numpy(m.wte.weight.data).astype(np.float64)     # [V, d]
    centred = table - table.mean(axis=0)
    first = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]   # [V]: along the top direction
    E = unit(table)
    cos = E @ E.T                                                      # [V, V]
    off = ~np.eye(len(vowels), dtype=bool)
    small, capital = [tokenizer.stoi[c] for c in lower], [tokenizer.stoi[c.upper()] for c in lower]
    return dict(cos=cos, frequency_order=abs(spearman(first, np.log(frequency))),   # a direction has no sign
                vowel_vowel=cos[np.ix_(vowels, vowels)][off].mean(),
                vowel_consonant=cos[np.ix_(vowels, consonants)].mean(),
                vowel_matched=cos[np.ix_(vowels, matched)].mean(),
                matched_matched=cos[np.ix_(matched, matched)][off].mean(),
                case_gap=cos[small, capital].mean()                    # 'a' with 'A', 'b' with 'B', ...
                - cos[np.ix_(small, capital)][~np.eye(len(lower), dtype=bool)].mean())   # 'a' with 'B', ...


trained, before = embedding_scores(model), embedding_scores(untrained)
cos = trained["cos"]
for c in ("a", "e", "t", "A", "T", ".", "\n"):
    row = cos[tokenizer.stoi[c]].copy()
    row[tokenizer.stoi[c]] = -np.inf                                   # not its own neighbour
    nearest = np.argsort(row)[::-1][:5]
    print(f"  nearest to {c!r:5}: " + ", ".join(f"{tokenizer.chars[i]!r} {row[i]:.2f}" for i in nearest))

# %% [markdown]
# ## Frequency comes first
#
# What does training write into the table first? How common each character is.
#
# - The output layer has no bias of its own.
# - So a character that should score high in almost every context needs a direction that almost every
#   $h$ shares.
# - The frequent characters move along it together.
#
# If so, the table's first principal direction (the one along which its rows vary most) should rank the
# characters by frequency. We measure that with a rank correlation against log frequency.

# %%
lesson.step("Frequency comes first")
print(f"  the table's first principal direction vs log frequency, |rank correlation|: trained "
      f"{trained['frequency_order']:.2f}, untrained {before['frequency_order']:.2f}")
FREQUENCY_ORDER, UNTRAINED_ORDER = 0.8, 0.6
lesson.check(f"trained: the table's first principal direction ranks the characters by frequency (|rank "
             f"correlation| above {FREQUENCY_ORDER}); untrained: below {UNTRAINED_ORDER}",
             trained["frequency_order"] > FREQUENCY_ORDER and before["frequency_order"] < UNTRAINED_ORDER,
             f"{trained['frequency_order']:.2f} vs {before['frequency_order']:.2f}")

# %% [markdown]
# So frequent characters look alike, whatever else they are.

# %% [markdown]
# ## Beyond frequency: vowels and capitals
#
# Do the vowels lie together? Vowels are frequent, and frequent characters look alike. So the claim
# means something only against consonants of the same frequency: each vowel is paired with the consonant
# closest to it in frequency.
#
# And a letter with its own capital: is 'a' closer to 'A' than to 'B'?
#
# Both are checked in lesson 16's full run only; a short run has not learned them yet.

# %%
lesson.step("Beyond frequency: vowels and capitals")
matched_chars = ", ".join(tokenizer.chars[i] for i in matched)
print(f"  mean cosine, trained (untrained): vowels among themselves {trained['vowel_vowel']:+.3f} "
      f"({before['vowel_vowel']:+.3f}); vowels with all consonants {trained['vowel_consonant']:+.3f} "
      f"({before['vowel_consonant']:+.3f});")
print(f"    vowels with the consonants of matched frequency ({matched_chars}) {trained['vowel_matched']:+.3f} "
      f"({before['vowel_matched']:+.3f}); those consonants among themselves {trained['matched_matched']:+.3f} "
      f"({before['matched_matched']:+.3f})")
print(f"  a letter with its capital minus with other capitals ('a'·'A' vs 'a'·'B'): trained "
      f"{trained['case_gap']:+.3f}, untrained {before['case_gap']:+.3f}")
vowel_gap = trained["vowel_vowel"] - trained["vowel_matched"]
vowel_gap_0 = before["vowel_vowel"] - before["vowel_matched"]
VOWEL_MARGIN = 0.2
if full_run:
    lesson.check(f"full run: the vowels lie together beyond frequency (their mutual cosine exceeds their "
                 f"cosine with consonants of matched frequency by more than {VOWEL_MARGIN}); untrained: not",
                 vowel_gap > VOWEL_MARGIN > vowel_gap_0, f"{vowel_gap:+.3f} vs {vowel_gap_0:+.3f}")
else:
    print(f"  (a short run has learned mostly frequency: its vowels are about as close to the consonants "
          f"of their frequency as to each other ({vowel_gap:+.3f}); the full run checks that they group "
          "beyond it)")
CASE_MARGIN = 0.1
if full_run:
    lesson.check(f"full run: a letter lies closer to its own capital than to other capitals (by more than "
                 f"{CASE_MARGIN} in cosine), in the untrained table it does not",
                 trained["case_gap"] > CASE_MARGIN > before["case_gap"],
                 f"{trained['case_gap']:+.3f} vs {before['case_gap']:+.3f}")
else:
    print("  (a short run has not yet tied capitals to their small letters: capitals start words and "
          "lines, small letters do not; the full run checks it)")
tables = [(name, backend.to_numpy(m.wte.weight.data).astype(np.float64))
          for m, name in ((model, "trained"), (untrained, "untrained (iteration 0)"))]
lesson.figure(plots.embeddings(tables, tokenizer.chars, classes, colours), "18_embeddings")

# %% [markdown]
# The figure: all 65 rows of each table, projected by PCA onto the two directions along which they vary
# most. Left the trained table, right the untrained one, where no structure can show.

# %% [markdown]
# ## Words: king − man + woman
#
# A character means little on its own. Words do, and in large word embeddings meaning shows as
# **directions**: $E_{queen} - E_{king}$ points about the way $E_{woman} - E_{man}$ does, so
# $E_{king} - E_{man} + E_{woman}$ lands near $E_{queen}$. Does that show in a model small enough to train
# here, on Shakespeare's words?
#
# - The words: lower-cased, those seen at least 40 times (628 of them; the rarer ones are left out).
# - The model: an `Embedding`, one row of 32 numbers per word, then a `Linear` layer to a score for
#   every word. From a word it predicts the words within 2 of it (skip-gram, word2vec's task), so words
#   with the same neighbours are pulled to the same rows.
# - The loss: the cross-entropy of all 627,042 (word, neighbour) pairs at once. A word's target is then
#   its counted neighbours $C_w$, not one id (`CrossEntropyLoss` takes one), so the gradient of its
#   scores is written out: $(n_w p_w - C_w)/N$, softmax minus target as in lesson 11, with $n_w$ its pairs.
#
# Two tests, each against the same model untrained:
#
# - **analogies**: 13 pairs such as (king, queen) and (lord, lady), each word frequent in the plays. For
#   every two pairs, $b - a + c$ (queen − king + lord): where does the right answer (lady) rank among all
#   the words by cosine, $a$, $b$ and $c$ left out? 156 analogies; and, to see what the offset adds,
#   $c$ alone and $c$ with the offset reversed, $a - b + c$.
# - **the direction itself**: the 13 differences $E_b - E_a$ (she − he, queen − king, ...) should point
#   the same way. Their mean cosine with one another is compared with 200 sets of 13 pairs of other words
#   of the same frequencies (each word replaced by one of the 20 nearest to it in count): in every pair
#   the male word is the more frequent, and frequency, as the last steps showed, is a direction of its own.

# %%
lesson.step("Words: king − man + woman")
MIN_COUNT, D_WORD, NEAR = 40, 32, 2
word_iters = 150 if lesson.quick else 300
PAIRS = (("he", "she"), ("his", "her"), ("king", "queen"), ("lord", "lady"), ("father", "mother"), ("son", "daughter"),
         ("brother", "sister"), ("man", "woman"), ("men", "women"), ("sir", "madam"), ("husband", "wife"),
         ("duke", "duchess"), ("master", "mistress"))
text_words = re.findall(r"[a-z]+(?:'[a-z]+)?", read_text(find_shakespeare()).lower())
spellings, where, counts = np.unique(text_words, return_inverse=True, return_counts=True)
by_count = np.argsort(-counts, kind="stable")                            # most frequent first
W = int((counts >= MIN_COUNT).sum())
words = spellings[by_count[:W]]                                          # the vocabulary, id = rank by count
word_id = {w: i for i, w in enumerate(words)}
rank = np.empty_like(by_count)
rank[by_count] = np.arange(len(by_count))
text_ids = rank[where][rank[where] < W]                                  # the text as word ids, rare words left out
C = sum(np.bincount(a * W + b, minlength=W * W) for gap in range(1, NEAR + 1)
        for a, b in ((text_ids[:-gap], text_ids[gap:]), (text_ids[gap:], text_ids[:-gap])))
C = C.reshape(W, W).astype(np.float64)                                   # [W, W]: u within NEAR words of w
n_w, N_pairs = C.sum(axis=1, keepdims=True), C.sum()
pairs = np.array([[word_id[a], word_id[b]] for a, b in PAIRS])           # [13, 2]
with backend.using(dtype="float64"), one_blas_thread():   # small products: one thread is fastest
    word_rng = backend.new_host_rng(0)
    embed, predict = Embedding(W, D_WORD, rng=word_rng), Linear(D_WORD, W, rng=word_rng)
    embed.weight.data *= 0.1                  # a small start, so that a few seconds of training dominate it
    untrained_table = backend.to_numpy(embed.weight.data).copy()         # [W, d]: the control
    optimizer = AdamW([("embed", embed.weight), ("predict.weight", predict.weight),
                       ("predict.bias", predict.bias)], lr=0.05, weight_decay=0.0)
    every_word = backend.asarray(np.arange(W))
    for it in range(word_iters + 1):
        z = predict(embed(every_word))                                   # [W, W]: each word's neighbour scores
        log_p = z - z.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))        # log softmax
        if it in (0, word_iters):
            print(f"  iteration {it}: loss {-(C * log_p).sum() / N_pairs:.3f} (ln W = {np.log(W):.3f})")
        if it < word_iters:
            optimizer.zero_grad()
            embed.backward(predict.backward((n_w * np.exp(log_p) - C) / N_pairs))
            optimizer.step()
    word_table = backend.to_numpy(embed.weight.data).copy()             # [W, d]: the trained word vectors


def analogy_ranks(table, offset=1):
    """For every two pairs (a, b), (c, d): the rank of d among all words by cosine with c + offset·(b − a)
    (offset 1: b − a + c; 0: c alone; −1: the offset reversed), a, b and c left out. [156]"""
    U = unit(table)
    ranks = []
    for (a, b), (c, d) in itertools.permutations(pairs, 2):
        score = U @ (U[c] + offset * (U[b] - U[a]))                      # [W], cosine × a positive factor
        score[[a, b, c]] = -np.inf
        ranks.append(int((score > score[d]).sum()) + 1)
    return np.array(ranks)


ranks, ranks_0 = analogy_ranks(word_table), analogy_ranks(untrained_table)
ranks_c, ranks_r = analogy_ranks(word_table, 0), analogy_ranks(word_table, -1)
print(f"  {W} words, {N_pairs:,.0f} (word, neighbour) pairs, {word_iters} iterations; rank of the answer among "
      f"{W} words, median (in the top 10):")
print(f"    b − a + c, trained {np.median(ranks):.0f} ({(ranks <= 10).mean():.0%}); untrained "
      f"{np.median(ranks_0):.0f} ({(ranks_0 <= 10).mean():.0%}); c alone, trained {np.median(ranks_c):.0f} "
      f"({(ranks_c <= 10).mean():.0%}); a − b + c, trained {np.median(ranks_r):.0f} ({(ranks_r <= 10).mean():.0%})")
print(f"    b − a + c ranks the answer above where c alone ranks it in {(ranks < ranks_c).sum()} of {len(ranks)} "
      f"analogies, below in {(ranks > ranks_c).sum()}")
U_words = unit(word_table)
for a, b, c, d in (("man", "woman", "king", "queen"), ("he", "she", "his", "her"),
                   ("father", "mother", "son", "daughter"), ("lord", "lady", "sir", "madam")):
    score = U_words @ (U_words[word_id[b]] - U_words[word_id[a]] + U_words[word_id[c]])
    score[[word_id[a], word_id[b], word_id[c]]] = -np.inf
    print(f"    {c} − {a} + {b}: " + ", ".join(words[np.argsort(score)[::-1][:4]])
          + f", ... ({d}: rank {int((score > score[word_id[d]]).sum()) + 1})")
lesson.check(f"trained: b − a + c ranks the answer in the top 5% of the {W} words (median rank ≤ {W // 20}); "
             f"untrained: not in the top quarter (median rank > {W // 4})",
             np.median(ranks) <= W // 20 and np.median(ranks_0) > W // 4,
             f"median rank {np.median(ranks):.0f} vs {np.median(ranks_0):.0f}")


def shared_direction(table, pairs):
    """The mean cosine between the difference vectors E_b − E_a of every two of the pairs."""
    D = unit(table[pairs[:, 1]] - table[pairs[:, 0]])
    return float((D @ D.T)[~np.eye(len(pairs), dtype=bool)].mean())


log_count = np.log(counts[by_count[:W]])
others = np.setdiff1d(np.arange(W), pairs)                               # the words of no pair
alike = {w: others[np.argsort(np.abs(log_count[others] - log_count[w]))[:20]] for w in pairs.ravel()}
control_rng = np.random.default_rng(1)
controls = []
for _ in range(200):
    firsts = [control_rng.choice(alike[a]) for a, _ in pairs]
    controls.append(np.array([[x, control_rng.choice(alike[b][alike[b] != x])] for x, (_, b) in zip(firsts, pairs)]))
shared, shared_0 = shared_direction(word_table, pairs), shared_direction(untrained_table, pairs)
control, control_0 = ([shared_direction(t, c) for c in controls] for t in (word_table, untrained_table))
print(f"  mean cosine between the 13 differences: trained {shared:+.3f} (200 sets of frequency-matched pairs: "
      f"{np.mean(control):+.3f} on average, at most {max(control):+.3f}); untrained {shared_0:+.3f} "
      f"(at most {max(control_0):+.3f})")
lesson.check("trained: the differences she − he, queen − king, ... share a direction, more than every one of 200 "
             "sets of frequency-matched pairs; untrained: not",
             shared > max(control) and shared_0 <= max(control_0),
             f"{shared:+.3f} vs at most {max(control):+.3f}; untrained {shared_0:+.3f} vs {max(control_0):+.3f}")
lesson.figure(plots.shared_direction([("trained", shared, control), ("untrained", shared_0, control_0)]),
              "18_word_directions")

# %% [markdown]
# The figure: the mean cosine of the 13 pairs' differences (red) against the 200 sets of
# frequency-matched pairs (grey), in the trained and in the untrained table.
#
# Two findings, and the first is less than it seems:
#
# - trained, $b - a + c$ ranks the answer near the top, untrained nowhere. But $c$ alone, with nothing
#   added, ranks it about as well: $b - a + c$ puts the answer above where $c$ alone does in fewer of the
#   156 analogies than below. Lady is near lord, she near he, because training put words that share
#   their neighbours close together; in a model this small the analogy test mostly measures that
#   closeness. The offset's sign does matter: reversed, $a - b + c$ ranks the answer well below $c$ alone.
# - the direction is there: the 13 differences point the same way more than any of 200 sets of
#   frequency-matched pairs, which average 0. But it is weak, a mean cosine of about 0.1 to 0.2: most of
#   each difference is other things (king and queen differ in more than sex), too little for
#   $b - a + c$ to beat $c$ alone reliably. Analogies that work by direction, word2vec's
#   king − man + woman ≈ queen, were learned from billions of words, not Shakespeare's 200,000. Here
#   king − man + woman gives prince or crown, and queen tens of places down.

# %% [markdown]
# ## The same character in different contexts
#
# Take 300 windows of 16 characters from the validation text that all end in 'e', so that 'e' sits at
# the same position in each.
#
# - What enters block 1 there, $E_e + P_{15}$, is the same vector in every window: the embedding knows
#   the character, not its context.
# - After block 1, attention (and the MLP) have added to it, from the characters before it: 'e' in
#   "to the" and 'e' in "hear me" are no longer the same vector.
#
# First measure, against the untrained model: how far the 300 vectors spread around their mean.

# %%
lesson.step("The same character in different contexts")
CHAR, N_CONTEXTS, WINDOW = "e", 300, 16
ends = np.flatnonzero(data.val[WINDOW:] == tokenizer.stoi[CHAR])[:N_CONTEXTS] + WINDOW  # [N]
windows = data.val[ends[:, None] - WINDOW + 1 + np.arange(WINDOW)]               # [N, WINDOW], all end in CHAR
before = windows[:, -2]                                                          # [N] the character before


def contextual(m):
    """The vector at the last position before block 1 and after it: ([N, d], [N, d])."""
    x = m.wpe(m.wte(backend.asarray(windows)))                         # [N, WINDOW, d]
    after = m.blocks[0](x, mask=causal_mask(WINDOW))                   # [N, WINDOW, d]
    return (backend.to_numpy(x)[:, -1].astype(np.float64),
            backend.to_numpy(after)[:, -1].astype(np.float64))


def context_scores(vectors):
    """How far the vectors spread around their mean (relative to its length), and the mean cosine of their
    context parts (vector minus the mean) for pairs with the same character before CHAR and with another."""
    mean = vectors.mean(axis=0)
    spread = np.linalg.norm(vectors - mean, axis=1).mean() / np.linalg.norm(mean)
    parts = unit(vectors - mean)                                       # [N, d]: what the context added
    cos = parts @ parts.T
    pairs = ~np.eye(len(vectors), dtype=bool)
    same = (before[:, None] == before[None, :]) & pairs
    return spread, cos[same].mean() - cos[pairs & ~same].mean()


print(f"  {N_CONTEXTS} windows of {WINDOW} characters, each ending in {CHAR!r}")
entering, after_block = contextual(model)
_, after_block_0 = contextual(untrained)
in_spread = np.abs(entering - entering[0]).max()
spread, grouping = context_scores(after_block)
spread_0, grouping_0 = context_scores(after_block_0)
print(f"  entering block 1: {N_CONTEXTS} identical vectors (largest difference {in_spread:.1e})")
print(f"  after block 1, spread around the mean vector (mean distance / length of the mean): trained "
      f"{spread:.3f}, untrained {spread_0:.3f}")
examples = ("Before we proceed any further, hear me", "First Citizen:\nLet us kill him, and we",
            "Caius Marcius is chief enemy to the")                      # three lines of the play, each ending in e
vectors = []
for m in (model, untrained):
    x = m.wpe(m.wte(backend.asarray(np.stack([tokenizer.encode(text[-WINDOW:]) for text in examples]))))
    vectors.append(unit(backend.to_numpy(m.blocks[0](x, mask=causal_mask(WINDOW)))[:, -1].astype(np.float64)))
for i, j in ((0, 1), (0, 2), (1, 2)):
    print(f"  {examples[i][-12:]!r} and {examples[j][-12:]!r}: cosine 1.000 before block 1; after it "
          f"{vectors[0][i] @ vectors[0][j]:.3f} (untrained {vectors[1][i] @ vectors[1][j]:.3f})")
SPREAD_RATIO, GROUPING_MARGIN = 2.0, 0.2
if full_run:
    lesson.check(f"full run: after block 1 the same character spreads out by context, more than "
                 f"{SPREAD_RATIO:g}× as far as in the untrained model", spread > SPREAD_RATIO * spread_0,
                 f"{spread:.3f} vs {spread_0:.3f}")
else:
    print("  (a few seconds of training do not yet reach past the current character (the loss is still above "
          "the bigram table's), so block 1 adds little context: the full run checks this claim and the next "
          "step's)")

# %% [markdown]
# ## Which context matters
#
# The vectors differ; but by what? Split each vector in two:
#
# - the mean vector: what every context shares;
# - the rest: what this context added.
#
# Then group the windows by the character just before 'e'. If block 1 reads the previous character, the
# added parts of one group point the same way: their mean cosine is higher than with the other groups.

# %%
lesson.step("Which context matters")
print(f"  context parts, mean cosine with the same character before {CHAR!r} minus with another: trained "
      f"{grouping:+.3f}, untrained {grouping_0:+.3f}")
if full_run:
    lesson.check(f"full run: what block 1 adds to {CHAR!r} depends on the character before it (grouping above "
                 f"{GROUPING_MARGIN}); untrained: below it", grouping > GROUPING_MARGIN > grouping_0,
                 f"{grouping:+.3f} vs {grouping_0:+.3f}")
else:
    print("  (not the full run: checked in the full run only, as in the last step)")
common = [c for c, _ in sorted(zip(*np.unique(before, return_counts=True)), key=lambda p: -p[1])[:6]]
lesson.figure(plots.contextual_vectors([("trained", after_block), ("untrained", after_block_0)], before, common,
                                       tokenizer.chars, CHAR, N_CONTEXTS), "18_contextual_vectors")

# %% [markdown]
# The figure: the 300 vectors of 'e' after block 1, projected by PCA, coloured by the character before
# it (the six most common; the others grey). Before block 1 they are all one point.

# %% [markdown]
# ## What each head of block 1 looks at
#
# A head's attention weights say, for every position $t$, how much of each earlier position it reads.
# Averaged over many windows of real text, we score four patterns per head, the weight on:
#
# - the previous character ($t - 1$);
# - itself ($t$);
# - the last space or newline before $t$ (where the current word starts);
# - position 0.
#
# The yardstick is a head that spreads its weight evenly over the $t + 1$ positions it may see: then the
# previous-character weight is about $1/(t + 1)$ on average. An untrained head is nearly that. A trained
# head that looks mostly at one place has learned to.

# %%
lesson.step("What each head of block 1 looks at")
n_windows = 64
starts = np.random.default_rng(0).integers(0, len(data.val) - T, n_windows)
text_windows = data.val[starts[:, None] + np.arange(T)]                  # [n, T]
separators = np.isin(text_windows, [tokenizer.stoi[" "], tokenizer.stoi["\n"]])
last_separator = np.full(text_windows.shape, -1)                         # before t (strictly)
for t in range(1, T):
    last_separator[:, t] = np.where(separators[:, t - 1], t - 1, last_separator[:, t - 1])
PATTERNS = ("previous", "itself", "last space", "position 0")


def block1_weights(m, windows):
    """The attention weights of every head of block 1: [n, n_head, T, T] (kept by the layer for backward)."""
    m(backend.asarray(windows))
    return backend.to_numpy(m.blocks[0].self_attn.sublayer.weights).astype(np.float64)


def pattern_scores(weights):
    """[n_head, 4]: each head's mean weight on the previous character, itself, the last space or newline
    before it, and position 0 (queries t >= 1; the last space only where there is one before t - 1)."""
    t = np.arange(1, T)
    previous = weights[:, :, t, t - 1].mean(axis=(0, 2))
    itself = weights[:, :, t, t].mean(axis=(0, 2))
    b, q = np.nonzero(last_separator[:, 1:] >= 0)
    q = q + 1
    word_start = last_separator[b, q]
    far = word_start < q - 1                                             # not the previous character itself
    space = weights[b[far], :, q[far], word_start[far]].mean(axis=0)
    first = weights[:, :, t, 0].mean(axis=(0, 2))
    return np.stack([previous, itself, space, first], axis=1)


# The yardstick: a head that spreads its weight evenly, 1/(t + 1) on each position it may see.
even = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]           # [T, T]
baseline = pattern_scores(np.broadcast_to(even, (len(text_windows), 1, T, T)))[0]   # [4]
ratio = pattern_scores(block1_weights(model, text_windows)) / baseline   # [n_head, 4]: × an even head's
ratio_0 = pattern_scores(block1_weights(untrained, text_windows)) / baseline
print("  an evenly spread head gives: " + ", ".join(f"{p} {s:.3f}" for p, s in zip(PATTERNS, baseline)))
print("  each head's weight on each pattern, as a multiple of that (untrained in brackets):")
print(f"  {'':8}" + "".join(f"{p:>16}" for p in PATTERNS))
for h in range(config.n_head):
    print(f"  head {h}: " + "".join(f"{r:7.2f}× ({r0:.2f}×)" for r, r0 in zip(ratio[h], ratio_0[h]))
          + f"   -> {PATTERNS[ratio[h].argmax()]}")
TRAINED_RATIO, UNTRAINED_RATIO = 3.0, 1.5
best_head = int(ratio.max(axis=1).argmax())
if full_run:
    lesson.check(f"full run: a head of block 1 gives one pattern more than {TRAINED_RATIO:g}× an even head's "
                 f"weight (head {best_head}: {PATTERNS[ratio[best_head].argmax()]}); untrained: no head more "
                 f"than {UNTRAINED_RATIO:g}×", ratio.max() > TRAINED_RATIO and ratio_0.max() < UNTRAINED_RATIO,
                 f"{ratio.max():.2f}× vs {ratio_0.max():.2f}×")
else:
    print("  (the heads of a model trained for a few seconds have barely begun to specialise: the full run "
          "checks that one has)")

# %% [markdown]
# In lesson 16's full run every head of block 1 is local:
#
# - each gives the previous character and the character itself several times an even share;
# - the start of the current word about twice it;
# - position 0 less than half.
#
# Reading the previous character is what takes the model past the bigram table. It is why, two steps
# ago, what block 1 added to 'e' depended on the character before it.

# %% [markdown]
# ## One line of verse, head by head
#
# The same weights on one line of the play: row $t$ of each map is what position $t$ reads (the
# query), the columns are the positions it reads from (the keys). The causal mask leaves everything
# above the diagonal at 0.

# %%
lesson.step("One line of verse, head by head")
starts_line = np.flatnonzero(data.val[:-T] == tokenizer.stoi["\n"]) + 1
start = next(i for i in starts_line if tokenizer.stoi["\n"] not in data.val[i:i + 40])  # a line of verse
line = data.val[None, start:start + T]                                   # [1, T]
weights = block1_weights(model, line)                                    # [1, h, T, T]
print(f"  the line: {tokenizer.decode(line[0])!r}")
titles = [f"head {h}: {PATTERNS[ratio[h].argmax()]} ({ratio[h].max():.1f}× even)" for h in range(config.n_head)]
lesson.figure(plots.head_weights(weights[0], tokenizer.decode(line[0]), titles), "18_block1_heads")

# %%
lesson.done()
