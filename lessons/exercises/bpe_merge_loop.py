"""Exercise (lesson 23): BPE's merge loop, encoding one pre-token.

Run it:  python lessons/23_subword_tokens.py --exercise
"""


def bpe_merge_loop(token, ranks):
    """The parts one pre-token splits into: step 2 of BPETokenizer's encoding.

    token: bytes, one pre-token of the split (e.g. b" citizens"), at least one byte.
    ranks: dict bytes -> int, the vocabulary: each of the 256 single bytes and every merged token,
           with its rank (its id: the order in which its merge was learned; lower means earlier).
    Returns a list of bytes, the parts, in order: b"".join(parts) == token, and each part is in ranks.

    The loop (lesson 23, step 4):
        parts = the single bytes of token
        repeat: among the adjacent pairs (parts[i], parts[i + 1]) whose joined bytes are in ranks,
                take the one of lowest rank; on a tie (the same pair at two places) the leftmost;
                replace the two parts by their join
        until no adjacent pair joins into a token of ranks.
    Lesson 23, step 4, checks your parts against the library's tokenizer on made-up vocabularies (a
    pair of low rank to the right of one of higher rank; runs like "eeeee", where the pairs tie) and
    on the held-out text.
    """
    # TODO: your code here (about 12 lines).
    raise NotImplementedError
