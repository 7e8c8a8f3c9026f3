"""Published weights in and out: GPT-2's four sizes in our GPT (gpt2.py), Hugging Face's Llama and Mistral
folders (llama.py), through the safetensors file format (safetensors.py), read and written with NumPy alone;
common.py holds the checks both loaders make.

    from tinytransformer.pretrained import load_gpt2, save_gpt2
    model = load_gpt2("gpt2")                 # downloads model.safetensors (548 MB) on first use
    save_gpt2(model, "out/my_gpt2")           # transformers.GPT2LMHeadModel.from_pretrained reads it
"""
from .gpt2 import SIZES, check_gpt2_architecture, crop_block_size, gpt2_config, load_gpt2, save_gpt2
from .llama import check_llama_architecture, llama_config_from_hf, load_llama, save_llama
from .safetensors import SafetensorsError, read_safetensors, write_safetensors

__all__ = ["load_gpt2", "save_gpt2", "gpt2_config", "SIZES", "check_gpt2_architecture", "crop_block_size",
           "read_safetensors", "write_safetensors", "SafetensorsError", "load_llama", "save_llama",
           "llama_config_from_hf", "check_llama_architecture"]
