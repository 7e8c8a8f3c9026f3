"""Exercise (lesson 07): softmax over the last axis, with a mask, that never overflows.

Run it:  python lessons/07_masks.py --exercise
"""
import numpy as np


def masked_softmax(scores, mask=None):
    """weights = softmax(scores) along the last axis, with weight exactly 0 where ``mask`` is False.

    scores: float array [..., T_q, T_k].
    mask:   None (everything allowed), or a boolean array that broadcasts against scores,
            True where query i may attend to key j (e.g. a causal mask [T, T]).
    Returns weights of the shape of scores: w_ij = exp(s_ij) / Σ_j' exp(s_ij') over the allowed j' only.

    What the lesson checks:
      - masked positions get weight exactly 0 (set their scores to −∞: exp(−∞) = 0);
      - each row sums to 1, and a row equals the softmax of its allowed scores alone;
      - scores in the thousands give no inf or NaN: exp(1000) overflows, so subtract each row's
        maximum first (softmax(s − c) = softmax(s) for any c added to a whole row);
      - a row whose every position is masked gives all zeros, not NaN (0/0).
    """
    # TODO: your code here (about 6 lines).
    raise NotImplementedError
