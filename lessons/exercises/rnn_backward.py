"""Exercise (lesson 03): the RNN's backward through time.

Run it:  python lessons/03_recurrent_networks.py --exercise
"""
import numpy as np


def rnn_backward(self, dh):
    """dx from dh = ∂L/∂h, and the gradients of W_xh, W_hh and b: the body of RNN.backward.

    self: the RNN layer after its forward, which kept
          self.x [B, T, d_in], its input;
          self.h [B, T, d_hidden], every hidden state h_0 .. h_{T−1} it returned;
          self.h0 [B, d_hidden], the state before step 0 (zeros unless forward was given one);
          self.h0_given, whether forward was given h0;
          W_xh = self.W_xh.data [d_in, d_hidden], W_hh = self.W_hh.data [d_hidden, d_hidden],
          b = self.bias.data [d_hidden]; self.d_in, self.d_hidden.
    dh: [B, T, d_hidden], the loss's gradient at each output h_t (from the layers after the RNN only).
    Returns dx [B, T, d_in]; when self.h0_given, the pair (dx, dh0) with dh0 [B, d_hidden].

    The forward (lesson 03, step 1, writes it out as a loop):
        a_t = x_t W_xh + h_{t−1} W_hh + b        h_t = tanh(a_t)        t = 0 .. T−1,  h_{−1} = h0

    h_t reaches the loss through the output dh_t and through every later state (h_{t+1} uses it), so
    walk the loop backwards, t = T−1 .. 0, carrying ∂L/∂h_t from step t + 1 to step t. tanh'(a) can be
    written with h_t alone. W_xh, W_hh and b are used at every step: their gradients sum the shares of
    all steps. They go into self.W_xh.grad, self.W_hh.grad and self.bias.grad, which the caller set to
    0 before the first backward and which are not yours alone: two backwards in a row must end with the
    sum of both (lesson 11, on Linear, explains why).
    Lesson 03, step 2, checks dx, dh0 and the three weights' gradients against finite differences in
    float64 and runs two backwards in a row; the rest of the lesson (the gradient that reaches a token
    d steps back, the training) then runs on your backward.
    """
    # TODO: your code here (about 12 lines).
    raise NotImplementedError
