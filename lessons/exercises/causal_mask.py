"""Exercise (lesson 07): the causal mask of a language model.

Run it:  python lessons/07_masks.py --exercise
"""
import numpy as np


def causal_mask(length):
    """The boolean [T, T] mask (T = length) with mask[i, j] True exactly when j <= i.

    Query i (position i) may attend to keys 0 .. i and never to a later one: a language model predicts
    token i + 1 at position i, so seeing position i + 1 would show it the answer. The table is
    lower-triangular, diagonal included:

        T = 3:   1 . .
                 1 1 .
                 1 1 1

    Return dtype bool (True = allowed), not 0/1 numbers: the lesson and the library index with it and
    negate it (~mask).
    """
    # TODO: your code here (one line).
    raise NotImplementedError
