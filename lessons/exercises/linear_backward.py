"""Exercise (lesson 11): the backward of Linear.

Run it:  python lessons/11_backprop_by_hand.py --exercise
"""
import numpy as np


def linear_backward(self, dy):
    """dx from dy = ∂L/∂y, and the gradients of W and b: the body of Linear.backward.

    self: the Linear layer after its forward, which kept its input self.x [..., in];
          W is self.weight.data [in, out] (stored [in, out], so that the forward is x @ W);
          b is self.bias.data [out] (self.bias may be None: no bias, no bias gradient);
          self.in_features = in, self.out_features = out.
    dy: [..., out], the leading axes those of x. Returns dx [..., in].

    The forward, applied to the last axis (every leading axis is just another row n):
        y_nj = Σ_i x_ni W_ij + b_j                    y = x W + b

    Write ∂L/∂W_ij, ∂L/∂b_j and ∂L/∂x_ni as sums over the entries of dy, from the line above (lesson
    11, step 2, derives them); then write each sum as one matrix product or one sum over rows.
    The parameters' gradients go into self.weight.grad [in, out] and self.bias.grad [out], which the
    caller set to 0 before the first backward. They are not yours alone: a weight used twice, or two
    micro-batches before one optimizer step, must end with the sum of every backward's share.
    Lesson 11 checks your dx, dW and db against finite differences in float64, also on a square W
    (where the shapes cannot tell a matrix from its transpose), and runs two backwards in a row.
    """
    # TODO: your code here (about 6 lines).
    raise NotImplementedError
