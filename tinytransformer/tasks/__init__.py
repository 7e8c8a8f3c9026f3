"""Small synthetic tasks with their data and evaluation, shared by the demo scripts and the lessons.

    reversal.py   a string -> the same string reversed: an encoder-decoder's task (train_seq2seq.py)
    brackets.py   balanced brackets or not: an encoder's task (train_classifier.py)
"""
