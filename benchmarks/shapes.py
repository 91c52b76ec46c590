"""Real model shapes the benchmarks and tests use with random weights (HF config.json fields)."""
import torch

QWEN25_05B = dict(model_type="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864,
                  num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True,
                  max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6)
LLAMA32_1B = dict(model_type="llama", vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                  num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                  tie_word_embeddings=True, max_position_embeddings=131072, rope_theta=500000.0, rms_norm_eps=1e-5,
                  rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                    original_max_position_embeddings=8192))


def write_random_folder(config: dict, folder: str) -> str:
    """An HF folder (config.json + model.safetensors, fp32) of a model with these shapes and random
    weights (N(0, 0.02), norms at one); no tokenizer: the benchmarks feed token ids."""
    from model.config import ModelConfig
    from model.export import export_hf_folder
    from model.transformer import Transformer

    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_hf(config))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0, 0.02)
    return export_hf_folder(model, None, folder)
