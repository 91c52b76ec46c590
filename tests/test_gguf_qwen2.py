"""A Qwen2-architecture GGUF (q, k, v biases, no row permutation, Qwen2's metadata keys) loads with our code
as transformers loads it. The real-weights fixture is a Llama-architecture file, so this path needs its own
oracle: a tiny random Qwen2 written with the gguf package's writer, read by both."""
import gguf
import numpy as np
import pytest
import torch
import transformers

from model.loading import load_model
from test_tokenizer import add_tokenizer, close_gguf
from tokenizer_folders import CHATML_SPECIALS

LAYERS, HIDDEN, INNER, HEADS, KV_HEADS = 2, 64, 112, 4, 2
BLOCK_NAMES = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
               "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
               "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
               "mlp.down_proj": "ffn_down"}


def gguf_name(hf_name: str) -> str:
    if hf_name.startswith("model.layers."):
        _, _, layer, rest = hf_name.split(".", 3)
        module, kind = rest.rsplit(".", 1)
        return f"blk.{layer}.{BLOCK_NAMES[module]}.{kind}"
    return {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
            "lm_head.weight": "output.weight"}[hf_name]


@pytest.fixture(scope="module")
def qwen2_gguf(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("qwen2") / "tiny-qwen2.gguf")
    writer = gguf.GGUFWriter(path, "qwen2")
    vocab = add_tokenizer(writer, "qwen2", CHATML_SPECIALS, None, "<|im_end|>")
    writer.add_context_length(512)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(INNER)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    # transformers' model of the same shapes gives the tensor names and shapes to write.
    config = transformers.Qwen2Config(vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=INNER,
                                      num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                      num_key_value_heads=KV_HEADS, tie_word_embeddings=False)
    model = transformers.AutoModelForCausalLM.from_config(config)
    rng = np.random.default_rng(0)
    for name, tensor in model.state_dict().items():
        # Fresh random values everywhere: HF's init leaves norms at 1 and biases at 0, which hides bugs.
        writer.add_tensor(gguf_name(name), rng.normal(0, 0.2, tensor.shape).astype(np.float32))
    close_gguf(writer)
    return path


def test_qwen2_gguf_logits_equal_transformers_gguf_loader(qwen2_gguf):
    model, tokenizer = load_model(qwen2_gguf)
    folder, name = qwen2_gguf.rsplit("/", 1)
    reference = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    assert model.config.qkv_bias and not model.config.tie_word_embeddings
    ids = torch.tensor([tokenizer.encode("the net force equals mass times acceleration")])
    with torch.no_grad():
        assert (model(ids) - reference(ids).logits).abs().max().item() <= 1e-4
