"""Exercise (lesson 11): the backward of softmax cross-entropy.

Run it:  python lessons/11_backprop_by_hand.py --exercise
"""
import numpy as np


def cross_entropy_backward(self, dloss=1.0):
    """dlogits from the upstream dloss (a scalar, 1 for the loss itself): the body of
    CrossEntropyLoss.backward.

    The loss was L = (1/N) Σ_n [log Σ_v exp(z_nv) − z_n,y_n] over the N targets that are not
    ignore_index. Its gradient: dz_n = dloss · (softmax(z_n) − onehot(y_n)) / N for a kept target,
    and 0 for an ignored one.

    self: the CrossEntropyLoss after its forward, which kept (rows flattened: logits [..., V] -> [R, V])
        self.probs    softmax(z) [R, V]
        self.rows     arange(R)
        self.targets  y [R], with ignored targets replaced by 0 (any valid id)
        self.weight   keep_n / N [R, 1]: 1/N for a kept target, 0 for an ignored one
        self.shape    the logits' shape
    Returns dz in the logits' shape. Do not change self.probs in place (copy it first).
    """
    # TODO: your code here (about 4 lines).
    raise NotImplementedError
