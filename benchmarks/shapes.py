"""Real model shapes the benchmarks and tests use with random weights (HF config.json fields)."""

QWEN25_05B = dict(model_type="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864,
                  num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True,
                  max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6)
