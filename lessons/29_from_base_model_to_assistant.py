# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 29: from base model to assistant: fine-tuning on answers
#
# A model pretrained on text is a **base model**: it continues documents. Ask it a question and it
# writes more of whatever document the question looks like; it does not answer. An **assistant** is the
# same network trained further on examples of the behaviour we want: questions followed by good answers
# (**instruction tuning**, or supervised fine-tuning), and then on human preferences between answers
# (**RLHF**).
#
# - We pretrain a tiny character GPT on Shakespeare: the base model.
# - We teach it one kind of question, "Q: word / A: the word reversed", with the same training loop,
#   counting the loss on the answers only.
# - We compare with a fine-tune that counts the questions too, test both on words they never saw, and
#   measure what the base model forgets.
# - RLHF's reward model, in one formula and one number.
#
# Run: `python lessons/29_from_base_model_to_assistant.py` (add `--no-pause` to run straight through).

# %%
import math
import re

import numpy as np
from _lesson import Lesson
from _plots import lesson29 as plots

from tinytransformer import AdamW, CrossEntropyLoss, backend
from tinytransformer.data import TextDataset, find_shakespeare, read_text, split_text
from tinytransformer.generate import generate
from tinytransformer.machine import one_blas_thread
from tinytransformer.models import GPT, GPTConfig

lesson = Lesson("29 From base model to assistant", steps=8)
backend.use("numpy", dtype="float64")  # lessons run on the CPU in float64; the training below in float32
np.set_printoptions(precision=3, suppress=True)

# Settings: --quick pretrains the base model for fewer steps, and fine-tunes it for fewer.
SEED = 0
PRETRAIN_STEPS = 250 if lesson.quick else 1000
FINE_TUNE_STEPS = 200 if lesson.quick else 400
BATCH, BLOCK = 32, 16                     # rows per step; the model's context (a question + answer is 15)
N_LETTERS = 4                             # every question is a four-letter word
N_TRAIN_WORDS, N_HELD_OUT = 400, 100
SHAKESPEARE_ROWS = 8                      # rows of plain text in every fine-tuning batch (step 4)
LR = 3e-3
IGNORE = -100                             # a target the loss skips (CrossEntropyLoss's ignore_index)


def rng(seed):
    return np.random.default_rng(seed)


def train(model, next_batch, steps, log_every=0, log=None):
    """The plain training loop: forward, backward, AdamW. next_batch(rng) -> x, y [B, T];
    targets equal to IGNORE count for nothing. log(step) is called every log_every steps."""
    optimizer = AdamW(model.named_parameters(), lr=LR, betas=(0.9, 0.99), weight_decay=0.0)
    batches = rng(SEED + 1)
    with backend.using("float32"), one_blas_thread():     # small matrices: fastest on one BLAS thread
        for step in range(1, steps + 1):
            model.zero_grad()
            model(*next_batch(batches))
            model.backward()
            optimizer.step()
            if log_every and step % log_every == 0:
                log(step)


def copy_of(model):
    """A second model with the same weights (float32, as the training runs in)."""
    with backend.using("float32"):
        twin = GPT(model.config)
    twin.load_state_dict(model.state_dict())
    return twin


# %% [markdown]
# ## A base model
#
# The base model is a GPT of one block ($d = 64$, 8 heads, a context of 16 characters), trained on what
# lesson 16's model is trained on: random windows of Shakespeare, every next character a target. It is
# much smaller than lesson 16's, so that each fine-tune below takes a second or two.
#
# One loop, `train`, does all the training in this lesson: pretraining and fine-tuning differ only in
# the batches it is given.

# %%
lesson.step("A base model")
text = read_text(find_shakespeare())
data = TextDataset(text)
tokenizer, V = data.tokenizer, data.tokenizer.vocab_size
with backend.using("float32"):
    base = GPT(GPTConfig(vocab_size=V, block_size=BLOCK, n_layer=1, n_head=8, n_embd=64, seed=SEED))
train(base, lambda batches: data.get_batch("train", BATCH, BLOCK, batches), PRETRAIN_STEPS)


def shakespeare_loss(model, n_batches=10):
    """The mean next-character loss on the same 10 batches of windows of the validation text."""
    windows = rng(1234)
    with one_blas_thread():
        return float(np.mean([model(*data.get_batch("val", BATCH, BLOCK, windows))[1] for _ in range(n_batches)]))


counts = np.bincount(data.train, minlength=V)
frequencies = counts[counts > 0] / counts.sum()
unigram_entropy = float(-(frequencies * np.log(frequencies)).sum())
base_val = shakespeare_loss(base)
print(f"  {base.num_parameters():,} parameters, {PRETRAIN_STEPS} steps of {BATCH} windows: "
      f"validation loss {base_val:.3f} nats (ln V = {math.log(V):.2f}, character frequencies alone "
      f"{unigram_entropy:.2f})")
sample = generate(base, tokenizer.encode("ROMEO:\n")[None], 60, temperature=0.8, seed=SEED)
print(f"  a sample: {tokenizer.decode(sample[0])!r}")
lesson.check("the base model predicts Shakespeare from context: validation loss below the entropy of the "
             "character frequencies", base_val < unigram_entropy, f"{base_val:.3f} < {unigram_entropy:.3f}")

# %% [markdown]
# ## Questions and answers
#
# The behaviour we want: given a question, write its answer, then stop. Our questions are four-letter
# words from Shakespeare, and the answer is the word reversed:
#
# `Q: love` ↵ `A: evol` ↵
#
# Each example is one row of 16 characters. As in pretraining, the input is the row and the targets are
# the row shifted by one. But only the answer is what we want the model to *produce*: the question is
# given. So the targets of the question's characters are set to $-100$, which the library's
# `CrossEntropyLoss` skips (its `ignore_index`, as in PyTorch): the loss is the mean of $-\log p$ over the
# answer's characters only, and the question's positions get no gradient:
#
# $$\mathcal{L} = -\frac{1}{|A|}\sum_{t \in A} \log p(x_{t+1} \mid x_{\le t})$$
#
# with $A$ the positions whose next character belongs to the answer (the last one predicts the final
# newline: the model must learn to stop). We take 400 words to train on and hold out 100 others.

# %%
lesson.step("Questions and answers")
words = sorted(set(re.findall(rf"\b[a-z]{{{N_LETTERS}}}\b", split_text(text)[0])))   # the training text's
words = [words[i] for i in rng(SEED).permutation(len(words))]
train_words, held_out = words[:N_TRAIN_WORDS], words[N_TRAIN_WORDS:N_TRAIN_WORDS + N_HELD_OUT]


def question(word):
    return f"Q: {word}\nA: "


def answer(word):
    return word[::-1] + "\n"


PROMPT = len(question("word"))                                     # 11 characters


def qa_rows(ws, masked=True):
    """x, y [len(ws), 15]: question + answer, and its next characters; with masked, the question's
    targets are IGNORE. Also is_answer [len(ws), 15]: which targets belong to the answer."""
    rows = np.stack([tokenizer.encode(question(w) + answer(w)) for w in ws])    # [B, 16]
    x, y = rows[:, :-1], rows[:, 1:].copy()                                     # [B, 15] each
    is_answer = np.arange(y.shape[1]) >= PROMPT - 1                             # [15]: target t+1 is an answer's
    is_answer = np.broadcast_to(is_answer, y.shape)
    if masked:
        y[~is_answer] = IGNORE
    return x, y, is_answer


x, y, is_answer = qa_rows(train_words[:3])
print(f"  {len(words)} four-letter words in the training text: {N_TRAIN_WORDS} to train on, {N_HELD_OUT} held out")
for row_x, row_y in zip(x, y):
    print(f"  input   {tokenizer.decode(row_x)!r}")
    shown = "".join("·" if t == IGNORE else tokenizer.decode([t]) for t in row_y)
    print(f"  targets {shown!r}")
x, y, _ = qa_rows(train_words)
kept = [tokenizer.decode(row[row != IGNORE]) for row in y]
lesson.check("the targets that count spell exactly each row's answer, the reversed word and a newline",
             kept == [answer(w) for w in train_words])

# %% [markdown]
# (`·`: a target the loss skips.)

# %% [markdown]
# ## The base model does not answer
#
# Give the base model a held-out question and let it write five characters, greedily (the most likely
# character each time). It has read these words in Shakespeare, but never this format: it continues the
# text as Shakespeare would, and the exact answer comes out by chance only.
#
# We also measure its loss on the 100 held-out rows, on the two parts separately: the question's
# characters (the loss it would pay to write the questions) and the answer's.

# %%
lesson.step("The base model does not answer")


def answers_of(model, ws):
    """What the model writes after each question: N_LETTERS + 1 characters, greedy."""
    prompts = np.stack([tokenizer.encode(question(w)) for w in ws])            # [B, 11]
    with one_blas_thread():
        out = generate(model, prompts, N_LETTERS + 1, temperature=0)           # [B, 16]
    return [tokenizer.decode(row[PROMPT:]) for row in backend.to_numpy(out)]


def exact_match(model, ws):
    written = answers_of(model, ws)
    return float(np.mean([w == answer(word) for w, word in zip(written, ws)])), written


def prompt_and_answer_loss(model, ws):
    """The mean loss of the question's targets and of the answer's, on the rows of ws."""
    x, y, is_answer = qa_rows(ws, masked=False)
    with one_blas_thread():
        logits, _ = model(x)
    loss = CrossEntropyLoss(ignore_index=IGNORE)
    return (float(loss(logits, np.where(is_answer, IGNORE, y))),      # the question's targets only
            float(loss(logits, np.where(is_answer, y, IGNORE))))      # the answer's only


base_exact, base_written = exact_match(base, held_out)
base_losses = prompt_and_answer_loss(base, held_out)
for word, written in list(zip(held_out, base_written))[:4]:
    print(f"  {question(word) + written!r}   (answer {answer(word)!r})")
print(f"  held-out questions answered exactly: {base_exact:.0%};  loss on the question's characters "
      f"{base_losses[0]:.2f}, on the answer's {base_losses[1]:.2f} nats")
lesson.check("the base model answers almost none of the held-out questions: at most 5%", base_exact <= 0.05,
             f"{base_exact:.0%}")

# %% [markdown]
# ## Fine-tuning: the same loop, on answers
#
# Fine-tuning is pretraining continued on other data: the same loop, the same loss, the weights of the
# base model as the start. Each step takes 32 questions with their answers, the questions' targets
# masked, and 8 windows of Shakespeare, every target counted. The Shakespeare rows keep the model a
# language model: without them (set `SHAKESPEARE_ROWS = 0`) a model this small forgets its pretraining
# within these steps, and its loss on Shakespeare ends above $\ln V$, a uniform guess's. InstructGPT
# mixes pretraining batches into its updates for the same reason.
#
# Every 20 steps we measure the loss on the held-out rows.

# %%
lesson.step("Fine-tuning: the same loop, on answers")


def fine_tune(masked):
    """A copy of the base model, fine-tuned on questions (targets masked or not) and Shakespeare rows;
    returns it and its held-out losses (question, answer) every 20 steps."""
    model = copy_of(base)
    curve = {0: base_losses}

    def next_batch(batches):
        x, y, _ = qa_rows([train_words[i] for i in batches.integers(0, N_TRAIN_WORDS, BATCH)], masked)
        text_x, text_y = data.get_batch("train", SHAKESPEARE_ROWS, x.shape[1], batches)
        return np.concatenate([x, text_x]), np.concatenate([y, text_y])             # [B + 8, 15]

    def log(step):
        curve[step] = prompt_and_answer_loss(model, held_out)

    train(model, next_batch, FINE_TUNE_STEPS, log_every=20, log=log)
    return model, curve


tuned, tuned_curve = fine_tune(masked=True)
tuned_losses = tuned_curve[FINE_TUNE_STEPS]
for step in (0, 60, 120, FINE_TUNE_STEPS):
    print(f"  step {step:>3}: held-out loss on the answers {tuned_curve[step][1]:.3f} nats")
lesson.check("the answers are learned: the held-out answer loss falls below a tenth of the base model's",
             tuned_losses[1] < base_losses[1] / 10, f"{tuned_losses[1]:.3f} vs {base_losses[1]:.3f}")

# %% [markdown]
# ## The questions are not learned
#
# The masked targets gave no gradient, so the model was never asked to predict the questions. To see
# what the mask does, we fine-tune a second copy of the base model on the very same batches with the
# questions' targets kept, and compare the losses on the held-out rows.

# %%
lesson.step("The questions are not learned")
unmasked, unmasked_curve = fine_tune(masked=False)
unmasked_losses = unmasked_curve[FINE_TUNE_STEPS]
for name, (on_question, on_answer) in (("base model", base_losses), ("answers only", tuned_losses),
                                       ("questions too", unmasked_losses)):
    print(f"  {name:<14} loss on the question's characters {on_question:.2f}, on the answer's {on_answer:.2f}")
lesson.check("fine-tuned on the answers only, the question loss does not fall below the base model's "
             "(within 0.25 nats)", tuned_losses[0] > base_losses[0] - 0.25,
             f"{tuned_losses[0]:.2f} vs {base_losses[0]:.2f}")
lesson.check("fine-tuned on the questions too, the same budget drives the question loss at least 1 nat lower",
             unmasked_losses[0] < base_losses[0] - 1, f"{unmasked_losses[0]:.2f}")
lesson.figure(plots.fine_tuning(tuned_curve, unmasked_curve, base_losses), "29_question_and_answer_loss")

# %% [markdown]
# The model fine-tuned on the questions too learns to predict "Q: ", ": " and the letters of English
# words: its question loss falls. The masked one learned the answers and nothing about the questions:
# its predictions there got no gradient; they drift with the shared weights, but not towards the
# questions. Chat models are fine-tuned the same way: the loss counts the assistant's replies, not the
# user's messages, since the model is to write replies, not to imitate users.

# %% [markdown]
# ## The assistant answers new questions
#
# Now the held-out questions, greedy as before, to the base model and the fine-tuned one.

# %%
lesson.step("The assistant answers new questions")
tuned_exact, tuned_written = exact_match(tuned, held_out)
for word, written in list(zip(held_out, tuned_written))[:4]:
    print(f"  {question(word) + written!r}")
wrong = [(w, a) for w, a in zip(held_out, tuned_written) if a != answer(w)]
print(f"  held-out questions answered exactly: base {base_exact:.0%}, fine-tuned {tuned_exact:.0%}; "
      f"wrong ones: {', '.join(f'{w} → {a.strip()}' for w, a in wrong[:4]) or 'none'}")
lesson.check("the fine-tuned model answers most held-out questions exactly (at least 80%)", tuned_exact >= 0.8,
             f"{tuned_exact:.0%}")

# %% [markdown]
# It has not memorised 400 answers: it reverses words it never saw in this format. What it learned is a
# behaviour (read the question, write the answer, stop), which is what instruction tuning teaches a
# base model, with many kinds of questions instead of one.

# %% [markdown]
# ## What it forgot
#
# The fine-tuned model is still a language model. How much of its Shakespeare did it keep? The loss on
# the validation text, before and after.

# %%
lesson.step("What it forgot")
tuned_val = shakespeare_loss(tuned)
print(f"  validation loss on Shakespeare: base {base_val:.3f}, fine-tuned {tuned_val:.3f} nats "
      f"({tuned_val - base_val:+.3f})")
sample = generate(tuned, tokenizer.encode("ROMEO:\n")[None], 60, temperature=0.8, seed=SEED)
print(f"  a sample from the fine-tuned model: {tokenizer.decode(sample[0])!r}")

# %% [markdown]
# A little, with 8 rows of Shakespeare in each batch. Fine-tuning moves the weights towards the new task,
# and whatever the new data does not exercise can drift. Keeping some of the old data in the mix, a small
# learning rate, or few steps keep the model close to what it was.

# %% [markdown]
# ## RLHF: a reward model is a classifier
#
# Instruction tuning needs the right answer written out. For "a better poem" or "a more helpful reply"
# it is easier for people to compare two answers. RLHF (InstructGPT) first trains a **reward model**
# $r(\text{prompt}, \text{answer})$ on such comparisons (Bradley–Terry):
#
# $$P(A \text{ preferred to } B) = \sigma(r_A - r_B), \quad \mathcal{L} = -\log \sigma(r_A - r_B)$$
#
# when people preferred $A$. That is a two-class softmax cross-entropy with logits $[r_A, r_B]$ and
# target class 0. Then the language model is tuned (with PPO) to write answers the reward model scores
# high, kept near the fine-tuned model so that it does not game the reward.

# %%
lesson.step("RLHF: a reward model is a classifier")
r_a, r_b = 1.3, 0.4                                                    # two rewards a reward model gave
p_a = 1 / (1 + math.exp(-(r_a - r_b)))                                 # σ(r_A − r_B)
p_b = 1 / (1 + math.exp(-(r_b - r_a)))
preference_loss = -math.log(p_a)
as_cross_entropy = float(CrossEntropyLoss()(np.array([[r_a, r_b]]), np.array([0])))
print(f"  r_A = {r_a}, r_B = {r_b}: P(A preferred to B) = σ({r_a - r_b:.1f}) = {p_a:.4f}, "
      f"P(B preferred to A) = {p_b:.4f}")
print(f"  −log σ(r_A − r_B) = {preference_loss:.12f};  "
      f"CrossEntropyLoss([r_A, r_B], class 0) = {as_cross_entropy:.12f}")
lesson.check("the preference loss is the library's softmax cross-entropy on [r_A, r_B] with target 0, to 1e-12",
             abs(preference_loss - as_cross_entropy) < 1e-12, f"{abs(preference_loss - as_cross_entropy):.1e}")
lesson.check("P(A preferred to B) + P(B preferred to A) = 1", abs(p_a + p_b - 1) < 1e-12)
gradient = CrossEntropyLoss()
gradient(np.array([[r_a, r_b]]), np.array([0]))
print(f"  its gradient with respect to [r_A, r_B]: {gradient.backward()[0]} = [−(1 − P), 1 − P]: "
      "raise the preferred answer's reward, lower the other's")

# %% [markdown]
# Only the difference of the rewards counts: adding a constant to both changes nothing, so a reward model
# is trained on comparisons and its numbers mean something only next to each other. The pipeline of an
# assistant: pretraining (the base model), supervised fine-tuning on answers (this lesson's steps 2–6),
# a reward model on comparisons, and reinforcement learning against it.

# %%
lesson.done()
