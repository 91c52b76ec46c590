"""Tokenizer: a `tokenizers.Tokenizer` plus what training and generation need to know about it.

All the models we support (Qwen2/2.5, Llama 3.x, SmolLM2) use byte-level BPE: text is split into
pieces by a regex, each piece's UTF-8 bytes are spelled with 256 printable characters, and merges
glue those into vocabulary tokens. Special tokens such as `<|im_start|>` are matched whole first.

Two sources:
  - an HF folder: tokenizer.json is the complete tokenizer; tokenizer_config.json names the
    special tokens and carries the chat template;
  - GGUF metadata: llama.cpp stores the vocabulary, the merges and the special token ids, but only
    the *name* of the pre-tokenizer (`tokenizer.ggml.pre`), which we map back to the splitting
    rules the merges were learned with (see PRE_TOKENIZERS).

`save` writes an HF folder that `transformers.AutoTokenizer` loads to the same ids and chat prompt.
Chat prompts are rendered by model/chat_templates.py, in Python, not Jinja.
"""
import json
import os
from dataclasses import dataclass
from typing import Optional

import tokenizers
from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors

from common.errors import PhysloraError
from model.chat_templates import DEFAULT_DATE, recognise

# Tokens that end an assistant turn (ChatML, Llama 3) or a document, whichever the vocabulary has.
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")
# The token that opens each turn tells the chat format apart when there is no template to ask.
FORMAT_MARKERS = {"<|im_start|>": "chatml", "<|start_header_id|>": "llama3"}

# llama.cpp's token types (tokenizer.ggml.token_type).
CONTROL, USER_DEFINED = 3, 4

# The splitting regexes of the official tokenizer.json files. GPT-2's own is built into ByteLevel.
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")  # digits one by one


@dataclass(frozen=True)
class PreTokenizer:
    """How a byte-level BPE vocabulary cuts text before merging (llama.cpp's `tokenizer.ggml.pre`)."""
    split_regex: Optional[str] = None  # None: GPT-2's regex
    digits_apart: bool = False         # every digit its own piece, before the regex
    nfc: bool = False                  # Unicode NFC normalisation first (Qwen2)
    ignore_merges: bool = False        # a piece already in the vocabulary is one token (Llama 3, tiktoken-style)
    add_bos_default: bool = False      # llama.cpp's default when the file has no add_bos_token


GPT2 = PreTokenizer()
SMOLLM = PreTokenizer(digits_apart=True)  # SmolLM2's tokenizer.json: Digits(individual) then ByteLevel
QWEN2 = PreTokenizer(QWEN2_SPLIT, nfc=True)
LLAMA3 = PreTokenizer(LLAMA3_SPLIT, ignore_merges=True, add_bos_default=True)
PRE_TOKENIZERS = {"default": GPT2, "gpt-2": GPT2, "smollm": SMOLLM, "qwen2": QWEN2,
                  "llama-bpe": LLAMA3, "llama3": LLAMA3, "llama-v3": LLAMA3}


class Tokenizer:
    def __init__(self, backend: tokenizers.Tokenizer, *, eos_token: Optional[str], bos_token: Optional[str] = None,
                 pad_token: Optional[str] = None, chat_template: Optional[str] = None,
                 model_max_length: Optional[int] = None, source: str = "tokenizer"):
        # Truncating or padding is the data pipeline's decision, never a side effect of encode().
        backend.no_truncation()
        backend.no_padding()
        self._backend, self.source = backend, source
        self.vocab_size = backend.get_vocab_size(with_added_tokens=True)
        self.bos_token, self.bos_id = self._known(bos_token)
        self.eos_token, self.eos_id = self._known(eos_token)
        if self.eos_id is None:
            raise PhysloraError(f"{source}: no end-of-sequence token (eos_token {eos_token!r} is not in the "
                                "vocabulary); physlora needs one to stop generation and to pad")
        pad_token, pad_id = self._known(pad_token)
        # Without a pad token we pad with EOS: padded positions are masked out of attention and loss anyway.
        self.pad_token, self.pad_id = (pad_token, pad_id) if pad_id is not None else (self.eos_token, self.eos_id)
        self.stop_ids = {self.eos_id} | {i for i in map(backend.token_to_id, STOP_TOKENS) if i is not None}
        self.add_bos = self.bos_id is not None and backend.encode("", add_special_tokens=True).ids[:1] == [self.bos_id]
        self.chat_template, self.model_max_length = chat_template, model_max_length
        self._renderer = recognise(chat_template) if chat_template else None
        self.chat_format = self._renderer.chat_format if self._renderer else self._format_from_vocabulary()

    def _known(self, token: Optional[str]):
        token_id = self._backend.token_to_id(token) if token is not None else None
        return (token, token_id) if token_id is not None else (None, None)

    def _format_from_vocabulary(self) -> str:
        for marker, chat_format in FORMAT_MARKERS.items():
            if self._backend.token_to_id(marker) is not None:
                return chat_format
        raise PhysloraError(f"{self.source}: the vocabulary has neither {' nor '.join(FORMAT_MARKERS)}; physlora "
                            "supports ChatML (Qwen2, SmolLM2) and Llama 3 tokenizers")

    # ---- loading -------------------------------------------------------------------------------

    @classmethod
    def from_folder(cls, folder: str) -> "Tokenizer":
        path = os.path.join(folder, "tokenizer.json")
        if not os.path.isfile(path):
            raise PhysloraError(f"{folder}: no tokenizer.json; pass a Hugging Face model folder or a .gguf file")
        try:
            backend = tokenizers.Tokenizer.from_file(path)
        except Exception as err:  # the Rust side reports every problem as a bare Exception
            raise PhysloraError(f"{path}: not a readable tokenizer ({str(err).splitlines()[0]}); "
                                "download the model's tokenizer.json again") from None
        # tokenizer.json's post-processor alone decides whether BOS is prepended: like transformers 5,
        # we ignore tokenizer_config.json's add_bos_token.
        config = _read_json(os.path.join(folder, "tokenizer_config.json"))
        return cls(backend, bos_token=_content(config.get("bos_token")), eos_token=_content(config.get("eos_token")),
                   pad_token=_content(config.get("pad_token")), chat_template=_chat_template(folder, config),
                   model_max_length=config.get("model_max_length"), source=folder)

    @classmethod
    def from_gguf_metadata(cls, metadata: dict, source: str = "GGUF file") -> "Tokenizer":
        model = metadata.get("tokenizer.ggml.model")
        if model != "gpt2":
            raise PhysloraError(f"{source}: tokenizer.ggml.model is {model!r}; only byte-level BPE ('gpt2': Qwen2, "
                                "Llama 3, SmolLM2) is supported, not SentencePiece ('llama'); use the model's "
                                "Hugging Face folder instead")
        pre_name = metadata.get("tokenizer.ggml.pre", "default")
        pre = PRE_TOKENIZERS.get(pre_name)
        if pre is None:
            raise PhysloraError(f"{source}: tokenizer.ggml.pre {pre_name!r} is not a pre-tokenizer physlora knows "
                                f"({', '.join(PRE_TOKENIZERS)}); use the model's Hugging Face folder instead")
        tokens = _required(metadata, "tokenizer.ggml.tokens", source)
        merges = [tuple(merge.split(" ")) for merge in _required(metadata, "tokenizer.ggml.merges", source)]
        backend = tokenizers.Tokenizer(models.BPE({token: i for i, token in enumerate(tokens)}, merges,
                                                  ignore_merges=pre.ignore_merges))
        if pre.nfc:
            backend.normalizer = normalizers.NFC()
        backend.pre_tokenizer = _byte_level_pre_tokenizer(pre)
        backend.decoder = decoders.ByteLevel()
        kinds = metadata.get("tokenizer.ggml.token_type", ())
        # Added tokens keep their vocabulary ids: control ones are special (dropped by decode), user-defined ones not.
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                    for t, kind in zip(tokens, kinds) if kind == CONTROL])
        backend.add_tokens([AddedToken(t, special=False, normalized=False)
                            for t, kind in zip(tokens, kinds) if kind == USER_DEFINED])

        def token_named_by(key):
            index = metadata.get(f"tokenizer.ggml.{key}")
            return tokens[index] if index is not None and 0 <= index < len(tokens) else None

        bos, eos = token_named_by("bos_token_id"), token_named_by("eos_token_id")
        backend.post_processor = _special_tokens_processor(
            backend, bos, eos, metadata.get("tokenizer.ggml.add_bos_token", pre.add_bos_default),
            metadata.get("tokenizer.ggml.add_eos_token", False))
        architecture = metadata.get("general.architecture")
        return cls(backend, bos_token=bos, eos_token=eos, pad_token=token_named_by("padding_token_id"),
                   chat_template=metadata.get("tokenizer.chat_template"),
                   model_max_length=metadata.get(f"{architecture}.context_length"), source=source)

    # ---- text <-> ids --------------------------------------------------------------------------

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids; special tokens written in the text (e.g. "<|im_end|>") become their single ids."""
        return self._backend.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_batch(self, texts, add_special_tokens: bool = False) -> list[list[int]]:
        return [e.ids for e in self._backend.encode_batch(list(texts), add_special_tokens=add_special_tokens)]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self._backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    # ---- chat ----------------------------------------------------------------------------------

    @property
    def has_chat_template(self) -> bool:
        return self.chat_template is not None

    def apply_chat_template(self, messages: list, add_generation_prompt: bool = False, *, tools=None,
                            date_string: str = DEFAULT_DATE) -> str:
        """The prompt text, exactly as transformers renders the model's template (`tokenize=False`).

        It already starts with BOS where the template writes one (Llama 3): encode it without
        add_special_tokens. `date_string` is the "Today Date" of Llama 3.1+ system blocks.
        """
        if tools:
            raise PhysloraError("tools: tool calling is not supported by physlora's chat templates; "
                                "describe the tools in the system message instead")
        if self.chat_template is None:
            raise PhysloraError(f"{self.source}: has no chat template (a base model?); use an instruct model, "
                                "or plain text prompts")
        if self._renderer is None:
            raise PhysloraError(f"{self.source}: its chat template is not one physlora renders exactly (SmolLM2, "
                                "Qwen2, Qwen2.5, Llama 3/3.1/3.2 Instruct); use one of those models, or plain text prompts")
        if self.chat_format == "llama3" and self.bos_token is None:
            raise PhysloraError(f"{self.source}: the Llama 3 chat template starts with the BOS token, but the "
                                "tokenizer has none")
        return self._renderer.render(messages, add_generation_prompt, self.bos_token, date_string)

    # ---- saving --------------------------------------------------------------------------------

    def save(self, folder: str) -> None:
        """Write tokenizer.json and tokenizer_config.json, the pair transformers and llama.cpp read."""
        os.makedirs(folder, exist_ok=True)
        self._backend.save(os.path.join(folder, "tokenizer.json"))
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": self.bos_token,
                  "eos_token": self.eos_token, "pad_token": self.pad_token,
                  # transformers 4.x would otherwise "clean up" decoded text, eating spaces before punctuation.
                  "clean_up_tokenization_spaces": False, "model_max_length": self.model_max_length,
                  "chat_template": self.chat_template}
        with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in config.items() if v is not None}, f, indent=2, ensure_ascii=False)


class TextStream:
    """The text of tokens as they arrive, for printing while generating. A character of several bytes
    (中, 🤖) may be split over tokens; until its last byte comes, decoding ends in U+FFFD, held back."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer, self.ids, self.shown = tokenizer, [], 0

    def push(self, token: int) -> str:
        """The text `token` completes."""
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        complete = len(text.rstrip("\ufffd"))
        new, self.shown = text[self.shown:complete], max(self.shown, complete)
        return new

    def finish(self) -> str:
        """What is still held back: generation may stop inside a character, which then stays U+FFFD."""
        return self.tokenizer.decode(self.ids)[self.shown:]


def _byte_level_pre_tokenizer(pre: PreTokenizer):
    steps = [pre_tokenizers.Digits(individual_digits=True)] if pre.digits_apart else []
    if pre.split_regex is not None:
        steps.append(pre_tokenizers.Split(Regex(pre.split_regex), behavior="isolated"))
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=pre.split_regex is None))
    return pre_tokenizers.Sequence(steps)


def _special_tokens_processor(backend, bos: Optional[str], eos: Optional[str], add_bos: bool, add_eos: bool):
    """Prepend BOS / append EOS when encoding with add_special_tokens=True (transformers' TemplateProcessing)."""
    prefix = [bos] if add_bos and bos is not None else []
    suffix = [eos] if add_eos and eos is not None else []
    return processors.TemplateProcessing(
        single=" ".join(prefix + ["$A"] + suffix),
        pair=" ".join(prefix + ["$A"] + suffix + [f"{t}:1" for t in prefix] + ["$B:1"] + [f"{t}:1" for t in suffix]),
        special_tokens=[(t, backend.token_to_id(t)) for t in dict.fromkeys(prefix + suffix)])


def _content(token) -> Optional[str]:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken dict."""
    return token.get("content") if isinstance(token, dict) else token


def _chat_template(folder: str, config: dict) -> Optional[str]:
    # Recent transformers save the template as a file of its own, which then wins over the config.
    path = os.path.join(folder, "chat_template.jinja")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return f.read()
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    return template


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PhysloraError(f"{path}: not valid JSON ({err}); download it again") from None


def _required(metadata: dict, key: str, source: str):
    if key not in metadata:
        raise PhysloraError(f"{source}: GGUF metadata has no {key}; the file does not describe a tokenizer")
    return metadata[key]
