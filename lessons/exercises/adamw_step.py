"""Exercise (lesson 16): one step of AdamW.

Run it:  python lessons/16_train_gpt.py --exercise
"""
import math

import numpy as np


def adamw_step(self, lr=None):
    """Update every parameter once from its current .grad: the body of AdamW.step.

    self: the AdamW optimizer, which holds
          self.params   {name: Parameter}: θ is p.data, its gradient g is p.grad (same shape, any shape);
          self.m, self.v {name: array of θ's shape}: the two running means below, zeros before step 1;
          self.step_count = t, the number of steps taken so far (0 before the first);
          self.lr, self.betas = (β1, β2), self.eps, self.weight_decay = wd;
          self.decays(name): whether weight decay applies to that parameter (matrices and tables, not
          biases or LayerNorm gains).
    lr: a learning rate that replaces self.lr (a schedule passes one at each step), or None.
    Update θ, m and v in place (p.data -= ..., m *= ...): the model, and a tied layer viewing the same
    array, must see the new values. Returns nothing.

    The running means, at step t = 1, 2, ... (count the step first):
        m = β1·m + (1 − β1)·g          v = β2·v + (1 − β2)·g²
    and the Adam step, coordinate by coordinate:
        θ = θ − lr · m̂ / (√v̂ + eps)
    where m̂ and v̂ are m and v corrected for starting at 0. Derive the correction yourself: with a
    constant gradient g, what is m after t steps? Divide out the factor that makes it differ from g.
    Weight decay is decoupled from the gradient: applied to θ itself, by the factor (1 − lr·wd), before
    the Adam step (torch's order), and only where self.decays(name).
    Lesson 16, steps 2 and 3, check the first step's size, a step with g = 0, and three steps against the
    library's AdamW.
    """
    # TODO: your code here (about 15 lines).
    raise NotImplementedError
