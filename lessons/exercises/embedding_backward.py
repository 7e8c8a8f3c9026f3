"""Exercise (lesson 02): the backward of an embedding lookup, a scatter-add.

Run it:  python lessons/02_embeddings.py --exercise
"""
import numpy as np


def embedding_backward(self, dy):
    """Add the output gradient of every position into the row of the table it was looked up from:
    the body of Embedding.backward.

    self: the Embedding layer after its forward, which kept self.idx [B, T] (integer token ids);
          the table W is self.weight.data [vocab_size, d_model], its gradient self.weight.grad.
    dy: [B, T, d_model], the gradient of the looked-up vectors. Returns None (ids get no gradient).

        self.weight.grad[v] += Σ_{(b, t): idx[b, t] = v} dy[b, t]

    A token that occurs three times receives three contributions, added. Careful: the one-liner
    ``grad[idx] += dy`` keeps only one of the repeats (lesson 02 shows why); np.add.at accumulates.
    """
    # TODO: your code here (one to three lines).
    raise NotImplementedError
