"""Exercise (lesson 16): one iteration of the training loop.

Run it:  python lessons/16_train_gpt.py --exercise
"""
import numpy as np


def training_iteration(model, optimizer, x, y, it, cfg):
    """One optimizer update of model on the batch x, y: what the trainer does at iteration `it`.

    model: a GPT; model(x, y) returns (logits, loss), the mean cross-entropy over the batch, and
           model.backward() then adds ∂loss/∂θ into every parameter's .grad; model.zero_grad() sets
           them to 0; model.parameters() lists the parameters.
    optimizer: an AdamW over model's parameters; optimizer.step(lr) updates them from their .grad at the
               learning rate lr.
    x, y: [B, T] token ids, the inputs and their next tokens.
    it: the iteration, 0, 1, 2, ...
    cfg: a TrainConfig; its lr, min_lr, warmup_iters, lr_decay_iters (the schedule) and grad_clip (the
         largest global gradient norm).
    Returns the batch's loss before the update, a float.

    What one iteration does (lesson 16, steps 2 to 7, show each piece): start from gradients of this batch
    alone; forward and backward; scale the gradients so their global norm is at most cfg.grad_clip
    (clip_grad_norm from tinytransformer.optim); then one AdamW step at the learning rate the schedule
    gives for iteration it (cosine_lr from tinytransformer.optim). The order matters.
    Lesson 16, step 8, runs a few iterations of yours against the library's loop in float64 (they must
    give the same weights to 1e-12) and checks that the loss falls.
    """
    # TODO: your code here (about 6 lines).
    raise NotImplementedError
