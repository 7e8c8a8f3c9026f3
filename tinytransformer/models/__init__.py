"""The three Transformer families: decoder-only (GPT), encoder-only, and encoder-decoder; the recurrent
language model that came before them; and the GPT built up one idea at a time (StageModel)."""
from .buildup import StageConfig, StageModel
from .encoder import EncoderClassifier, EncoderConfig
from .gpt import GPT, GPTConfig
from .rnn import RNNConfig, RNNLanguageModel
from .seq2seq import Seq2Seq, Seq2SeqConfig

__all__ = ["GPT", "GPTConfig", "EncoderClassifier", "EncoderConfig", "Seq2Seq", "Seq2SeqConfig",
           "RNNLanguageModel", "RNNConfig", "StageModel", "StageConfig"]
