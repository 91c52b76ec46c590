"""Model configuration: the handful of numbers that define a Qwen2 or Llama decoder.

One dataclass serves every source: an HF `config.json` (`from_hf`), GGUF metadata
(`from_gguf_metadata`) and the export back to `config.json` (`to_hf`). Field names follow
HF's so that a reader can compare with any model card.

Architecture differences that matter here:
  - Qwen2 has biases on q/k/v (never on o_proj); Llama has none unless `attention_bias`.
  - Llama 3.1+ rescales RoPE frequencies (`rope_scaling.rope_type == "llama3"`).
"""
import json
from dataclasses import asdict, dataclass, field
from typing import Optional

from common.errors import PhysloraError

SUPPORTED_MODEL_TYPES = ("qwen2", "llama")


@dataclass
class ModelConfig:
    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rope_theta: float = 10000.0
    rope_scaling: Optional[dict] = None
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    o_proj_bias: bool = False
    mlp_bias: bool = False
    max_position_embeddings: int = 2048
    bos_token_id: Optional[int] = None
    eos_token_id: Optional[object] = None  # an int or a list of ints, as in HF configs
    extra: dict = field(default_factory=dict, repr=False)  # untouched HF keys, kept for export

    def __post_init__(self):
        if self.model_type not in SUPPORTED_MODEL_TYPES:
            raise PhysloraError(
                f"unsupported model_type {self.model_type!r}: physlora runs {', '.join(SUPPORTED_MODEL_TYPES)}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise PhysloraError(f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                                f"num_key_value_heads ({self.num_key_value_heads})")
        scaling = self.rope_scaling
        if scaling is not None:
            kind = scaling.get("rope_type", scaling.get("type"))
            if kind not in ("llama3", "default"):
                raise PhysloraError(f"rope_scaling type {kind!r} is not supported (only 'llama3')")

    # ---- HF config.json -------------------------------------------------------------------
    @classmethod
    def from_hf(cls, hf: dict, source: str = "config.json") -> "ModelConfig":
        model_type = hf.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise PhysloraError(f"{source}: unsupported model_type {model_type!r}; "
                                f"physlora runs {', '.join(SUPPORTED_MODEL_TYPES)}")
        if hf.get("hidden_act", "silu") != "silu":
            raise PhysloraError(f"{source}: hidden_act {hf['hidden_act']!r} is not supported; physlora's MLP is "
                                "SwiGLU, silu(gate)·up")
        if hf.get("use_sliding_window"):
            raise PhysloraError(f"{source}: use_sliding_window is true; physlora attends to every earlier token "
                                "(no official Qwen2 or Qwen2.5 model turns the window on)")
        try:
            heads = hf["num_attention_heads"]
            hidden = hf["hidden_size"]
            known = dict(
                model_type=model_type,
                vocab_size=hf["vocab_size"],
                hidden_size=hidden,
                intermediate_size=hf["intermediate_size"],
                num_hidden_layers=hf["num_hidden_layers"],
                num_attention_heads=heads,
                num_key_value_heads=hf.get("num_key_value_heads") or heads,
                head_dim=hf.get("head_dim") or hidden // heads,
                rope_theta=float(hf.get("rope_theta") or (hf.get("rope_parameters") or {}).get("rope_theta", 10000.0)),
                rope_scaling=_rope_scaling_of(hf),
                rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
                tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
                qkv_bias=model_type == "qwen2" or bool(hf.get("attention_bias", False)),
                o_proj_bias=model_type == "llama" and bool(hf.get("attention_bias", False)),
                mlp_bias=bool(hf.get("mlp_bias", False)),
                max_position_embeddings=hf.get("max_position_embeddings", 2048),
                bos_token_id=hf.get("bos_token_id"),
                eos_token_id=hf.get("eos_token_id"),
            )
        except KeyError as missing:
            raise PhysloraError(f"{source}: missing field {missing.args[0]!r}") from None
        extra = {k: v for k, v in hf.items() if k not in known and k not in _DERIVED_HF_KEYS}
        return cls(**known, extra=extra)

    @classmethod
    def from_file(cls, path: str) -> "ModelConfig":
        try:
            with open(path) as f:
                return cls.from_hf(json.load(f), source=path)
        except json.JSONDecodeError as err:
            raise PhysloraError(f"{path}: not valid JSON ({err})") from None

    def to_hf(self) -> dict:
        hf = dict(self.extra)
        hf.update({k: v for k, v in asdict(self).items()
                   if k not in ("extra", "qkv_bias", "o_proj_bias")})
        hf["architectures"] = ["Qwen2ForCausalLM" if self.model_type == "qwen2" else "LlamaForCausalLM"]
        hf["hidden_act"] = "silu"
        if self.model_type == "llama":
            hf["attention_bias"] = self.qkv_bias
        hf.pop("rope_parameters", None)
        if self.rope_scaling is None:
            hf.pop("rope_scaling", None)
        return hf

    # ---- GGUF metadata --------------------------------------------------------------------
    @classmethod
    def from_gguf_metadata(cls, meta: dict, tensor_names, source: str = "GGUF file") -> "ModelConfig":
        """Build a config from GGUF key/values (`{arch}.block_count`, ...).

        Biases and tied embeddings are not in the metadata: they are read off which tensors exist.
        """
        arch = meta.get("general.architecture")
        if arch not in SUPPORTED_MODEL_TYPES:
            raise PhysloraError(f"{source}: unsupported architecture {arch!r}; "
                                f"physlora runs {', '.join(SUPPORTED_MODEL_TYPES)}")

        def get(key, default=None):
            value = meta.get(f"{arch}.{key}", default)
            if value is None:
                raise PhysloraError(f"{source}: metadata key {arch}.{key} is missing")
            return value

        scaling = meta.get(f"{arch}.rope.scaling.type", "none")
        if scaling != "none":
            raise PhysloraError(f"{source}: {arch}.rope.scaling.type {scaling!r} is not supported (RoPE without "
                                "scaling only in GGUF files); load the HF folder or hub id instead")
        names = set(tensor_names)
        heads = int(get("attention.head_count"))
        hidden = int(get("embedding_length"))
        vocab = meta.get(f"{arch}.vocab_size") or len(meta.get("tokenizer.ggml.tokens", ()))
        eos = meta.get("tokenizer.ggml.eos_token_id")
        return cls(
            model_type=arch,
            vocab_size=int(vocab),
            hidden_size=hidden,
            intermediate_size=int(get("feed_forward_length")),
            num_hidden_layers=int(get("block_count")),
            num_attention_heads=heads,
            num_key_value_heads=int(get("attention.head_count_kv", heads)),
            head_dim=int(meta.get(f"{arch}.attention.key_length") or hidden // heads),
            rope_theta=float(get("rope.freq_base", 10000.0)),
            rms_norm_eps=float(get("attention.layer_norm_rms_epsilon")),
            tie_word_embeddings="output.weight" not in names,
            qkv_bias="blk.0.attn_q.bias" in names,
            o_proj_bias="blk.0.attn_output.bias" in names,
            mlp_bias="blk.0.ffn_up.bias" in names,
            max_position_embeddings=int(get("context_length", 2048)),
            bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
            eos_token_id=eos,
        )


_DERIVED_HF_KEYS = ("rope_parameters", "attention_bias", "architectures", "hidden_act")


def _rope_scaling_of(hf: dict) -> Optional[dict]:
    """HF moved rope settings from `rope_scaling` to `rope_parameters` (transformers 5); read both."""
    scaling = hf.get("rope_scaling") or hf.get("rope_parameters")
    if not scaling or scaling.get("rope_type", scaling.get("type")) in (None, "default"):
        return None
    return {k: v for k, v in scaling.items() if k != "rope_theta"}
