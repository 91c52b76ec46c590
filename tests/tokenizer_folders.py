"""Small tokenizer folders shaped like the real models', and the official chat templates, for tokenizer tests."""
import json
import os

from tokenizers import Tokenizer as BackendTokenizer
from tokenizers import decoders, models, pre_tokenizers, processors

TEMPLATES_DIR = os.path.join(os.path.dirname(__file__), "fixtures", "chat_templates")
OFFICIAL_TEMPLATES = sorted(name[:-len(".jinja")] for name in os.listdir(TEMPLATES_DIR) if name.endswith(".jinja"))

CHATML_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eom_id|>", "<|eot_id|>"]

CONVERSATIONS = {
    "system_and_user": [{"role": "system", "content": "You are a physics tutor."},
                        {"role": "user", "content": "What is g on Earth?"}],
    "user_only": [{"role": "user", "content": "What is g on Earth?"}],
    "multi_turn": [{"role": "user", "content": "What is g?"},
                   {"role": "assistant", "content": "About 9.81 m/s²."},
                   {"role": "user", "content": "And on the Moon?"}],
    "ends_with_assistant": [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "Unit of force?"},
                            {"role": "assistant", "content": "The newton (N)."}],
    "padded_contents": [{"role": "system", "content": "  Think step by step.\n"},
                        {"role": "user", "content": "\n\nA 2 kg mass...  "},
                        {"role": "assistant", "content": " F = ma\n"}],
}


def official_template(name: str) -> str:
    with open(os.path.join(TEMPLATES_DIR, name + ".jinja"), encoding="utf-8") as f:
        return f.read()


def write_folder(folder, specials, config, bos_prepended=None) -> str:
    """A byte-level BPE tokenizer (one token per byte, no merges) with the given special tokens."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = BackendTokenizer(models.BPE({c: i for i, c in enumerate(alphabet)}, []))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(specials)
    if bos_prepended:
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos_prepended} $A", special_tokens=[(bos_prepended, backend.token_to_id(bos_prepended))])
    os.makedirs(folder, exist_ok=True)
    backend.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(config, f)
    return str(folder)


def chatml_folder(folder, template) -> str:
    """Shaped like Qwen2.5-Instruct's: no BOS, EOS <|im_end|>, pad <|endoftext|>."""
    return write_folder(folder, CHATML_SPECIALS, {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": None, "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>", "chat_template": template})


def llama3_folder(folder, template) -> str:
    """Shaped like Llama-3.2-Instruct's: BOS prepended by tokenizer.json's post-processor, EOS <|eot_id|>, no pad."""
    return write_folder(folder, LLAMA3_SPECIALS, {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>", "chat_template": template}, bos_prepended="<|begin_of_text|>")


def folder_for(folder, template_name: str) -> str:
    """A folder whose vocabulary fits the official template `template_name`."""
    make = llama3_folder if template_name.startswith("llama") else chatml_folder
    return make(folder, official_template(template_name))
