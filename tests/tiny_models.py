"""Tiny random Qwen2 / Llama models, identical in transformers and in ours (test oracle pairs)."""
import torch
import transformers

from model.config import ModelConfig
from model.export import export_hf_folder
from model.tokenizer import Tokenizer
from model.transformer import Transformer
from model.weights import build_model
from tokenizer_folders import chatml_folder, official_template

TINY = dict(vocab_size=211, hidden_size=64, intermediate_size=112, num_hidden_layers=3,
            num_attention_heads=4, max_position_embeddings=512, rms_norm_eps=1e-6)

CONFIGS = {
    "qwen2-tied": lambda: transformers.Qwen2Config(**TINY, num_key_value_heads=2, tie_word_embeddings=True,
                                                   rope_theta=10000.0),
    "qwen2-untied": lambda: transformers.Qwen2Config(**TINY, num_key_value_heads=4, tie_word_embeddings=False,
                                                     rope_theta=1000000.0),
    "llama3-gqa-rope-scaling": lambda: transformers.LlamaConfig(
        **TINY, num_key_value_heads=1, tie_word_embeddings=True, rope_theta=500000.0,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=64)),
    "llama-head-dim-32": lambda: transformers.LlamaConfig(**{**TINY, "num_hidden_layers": 2}, num_key_value_heads=2,
                                                          head_dim=32, tie_word_embeddings=False),
    "llama-biases": lambda: transformers.LlamaConfig(**{**TINY, "num_hidden_layers": 2}, num_key_value_heads=2,
                                                     attention_bias=True, mlp_bias=True),
}


def make_pair(name, seed=0):
    """The same random weights in a transformers model and in ours."""
    torch.manual_seed(seed)
    hf_config = CONFIGS[name]()
    hf_model = transformers.AutoModelForCausalLM.from_config(hf_config, attn_implementation="eager").eval()
    # Fresh random values everywhere (HF's init leaves norms at 1 and biases at 0, which hides bugs).
    with torch.no_grad():
        for param in hf_model.parameters():
            param.normal_(0, 0.2)
    config = ModelConfig.from_hf(hf_config.to_dict())
    ours = build_model(config, dict(hf_model.state_dict()), torch.float32, "cpu", source=name)
    return hf_model, ours


def write_tiny_model(folder) -> str:
    """A 2-layer Llama with SmolLM2's chat template and a byte-level vocabulary, as an HF folder."""
    tokenizer = Tokenizer.from_folder(chatml_folder(str(folder) + "-tokenizer", official_template("smollm2-instruct")))
    config = ModelConfig.from_hf(dict(model_type="llama", vocab_size=tokenizer.vocab_size, hidden_size=64,
                                      intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=1024))
    torch.manual_seed(0)
    model = Transformer(config)
    torch.nn.init.normal_(model.model.embed_tokens.weight, std=0.5)  # logits with some spread, as a trained model's
    return export_hf_folder(model, tokenizer, str(folder))
