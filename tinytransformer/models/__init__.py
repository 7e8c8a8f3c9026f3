"""The three Transformer families: decoder-only (GPT), encoder-only, and encoder-decoder; and the
recurrent language model that came before them."""
from .encoder import EncoderClassifier, EncoderConfig
from .gpt import GPT, GPTConfig
from .rnn import RNNConfig, RNNLanguageModel
from .seq2seq import Seq2Seq, Seq2SeqConfig

__all__ = ["GPT", "GPTConfig", "EncoderClassifier", "EncoderConfig", "Seq2Seq", "Seq2SeqConfig",
           "RNNLanguageModel", "RNNConfig"]
