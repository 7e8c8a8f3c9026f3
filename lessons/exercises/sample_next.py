"""Exercise (lesson 17): draw the next token from the logits, with temperature and top-k.

Run it:  python lessons/17_sampling.py --exercise
"""
import numpy as np


def sample_next(logits, temperature, top_k, rng):
    """One next id per row: what generate() does with the last position's logits at each step.

    logits: [B, V] float, one row of logits z per sequence.
    temperature: T, a finite number > 0 (the lesson goes as low as T = 0.001).
    top_k: an int k ≥ 1 (sample among the k largest logits of the row only), or None (among all V).
    rng: a numpy.random.Generator; every random number must come from it (rng.random(...),
         rng.choice(...)), so that the same seed gives the same ids.
    Returns ids [B], integers in 0 .. V−1.

    The distribution each row is drawn from (lesson 17, steps 3 to 5):
        p = softmax(z / T)                     over the whole row when top_k is None
        p_i ∝ exp(z_i / T) for the k largest z_i, and p_i = 0 for every other token
    so the kept tokens keep their ratios, p_i / p_j = exp((z_i − z_j) / T), and p sums to 1. Then draw
    one id from p for each row. At T = 0.001, z / T reaches the thousands: mind what exp does there
    (lesson 07). Lesson 17, step 6, checks the argmax at T = 0.001 and at top_k = 1; step 7 that no token
    outside the top k ever comes up, and the frequencies of 50,000 draws against p.
    """
    # TODO: your code here (about 10 lines).
    raise NotImplementedError
