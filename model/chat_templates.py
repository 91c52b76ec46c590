"""Chat templates in plain Python, byte-identical to the models' official Jinja templates.

An instruct model ships its prompt format as a small Jinja program (`chat_template` in
tokenizer_config.json, or `tokenizer.chat_template` in a GGUF file). We do not run Jinja: we
recognise the official templates we support and render them with a few lines of Python.

  ChatML (SmolLM2, Qwen2, Qwen2.5):
      <|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{text}<|im_end|>\\n...<|im_start|>assistant\\n
      A conversation without a system message gets the template's default one.
  Llama 3 (3.0, 3.1, 3.2):
      <|begin_of_text|><|start_header_id|>user<|end_header_id|>\\n\\n{text}<|eot_id|>...
      Every content is stripped of surrounding whitespace. From 3.1 on, the conversation always
      opens with a system block stating the knowledge cutoff and "today's" date.

A template is recognised by a fingerprint of its text, taken after blanking the default system
prompt (Qwen2.5-Math only changes that prompt, and is recognised) and spelling Jinja's `\\n`
escapes as real newlines. A template we do not know is refused rather than approximated: a subtly
wrong prompt format silently degrades a fine-tune.
"""
import hashlib
import re
from dataclasses import dataclass
from typing import Optional

from common.errors import PhysloraError

# Llama 3.2's template prints today's date (strftime_now); 3.1's prints this one. We always default
# to it: a training example or an evaluation prompt must not change from one day to the next.
DEFAULT_DATE = "26 Jul 2024"
ROLES = ("system", "user", "assistant")

# The default system prompt sits in a ChatML literal of its own: `'<|im_start|>system\n...<|im_end|>\n'`.
_DEFAULT_SYSTEM = re.compile(r"<\|im_start\|>system(?:\\n|\n)((?:[^'\"\\]|\\.)+?)<\|im_end\|>")


@dataclass(frozen=True)
class ChatTemplate:
    chat_format: str                      # "chatml" or "llama3"
    default_system: Optional[str] = None  # ChatML: inserted when the first message is not a system one
    dated_system_block: bool = False      # Llama 3.1+: the knowledge-cutoff system block

    def render(self, messages: list, add_generation_prompt: bool, bos_token: Optional[str],
               date_string: str) -> str:
        _check(messages)
        if self.chat_format == "chatml":
            return self._render_chatml(messages, add_generation_prompt)
        return self._render_llama3(messages, add_generation_prompt, bos_token, date_string)

    def _render_chatml(self, messages, add_generation_prompt):
        turns = [(m["role"], m["content"]) for m in messages]
        if self.default_system is not None and turns[0][0] != "system":
            turns.insert(0, ("system", self.default_system))
        text = "".join(f"<|im_start|>{role}\n{content}<|im_end|>\n" for role, content in turns)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")

    def _render_llama3(self, messages, add_generation_prompt, bos_token, date_string):
        # Jinja's `trim` filter is Python's str.strip().
        turns = [(m["role"], m["content"].strip()) for m in messages]
        if self.dated_system_block:
            system = turns.pop(0)[1] if turns[0][0] == "system" else ""
            turns.insert(0, ("system", "Cutting Knowledge Date: December 2023\n"
                                       f"Today Date: {date_string}\n\n{system}"))
        text = "".join(f"<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"
                       for role, content in turns)
        header = "<|start_header_id|>assistant<|end_header_id|>\n\n" if add_generation_prompt else ""
        return bos_token + text + header


# sha256 (first 16 hex digits) of each official template, as `fingerprint` computes it, and how to
# render it. tests/test_tokenizer.py recomputes them from the official texts in tests/fixtures/chat_templates/.
KNOWN_TEMPLATES = {
    "bf0c34b1af07f37d": ("chatml", False),  # SmolLM2 Instruct and Qwen2 Instruct
    "0b13fb322ccd9216": ("chatml", False),  # Qwen2.5 Instruct, and variants that only change the default prompt
    "ba03a121d097859c": ("llama3", False),  # Llama 3 Instruct
    "99799a835a31e1d3": ("llama3", True),   # Llama 3.1 Instruct
    "0cac23ffd2b33ff7": ("llama3", True),   # Llama 3.2 Instruct
}


def default_system_prompt(template: str) -> Optional[str]:
    """The system prompt a ChatML template inserts by itself, unescaped the way Jinja reads string literals."""
    match = _DEFAULT_SYSTEM.search(template)
    if match is None:
        return None
    return match.group(1).encode("ascii", "backslashreplace").decode("unicode-escape")


def fingerprint(template: str) -> str:
    match = _DEFAULT_SYSTEM.search(template)
    if match is not None:
        template = template.replace(match.group(1), "")
    canonical = template.replace("\\n", "\n").strip()
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def recognise(template: str) -> Optional[ChatTemplate]:
    """The renderer for an official template we support, or None."""
    known = KNOWN_TEMPLATES.get(fingerprint(template))
    if known is None:
        return None
    chat_format, dated_system_block = known
    return ChatTemplate(chat_format, default_system_prompt(template), dated_system_block)


def _check(messages: list) -> None:
    if not messages:
        raise PhysloraError("messages: the conversation is empty; pass at least one message")
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool" or (isinstance(message, dict) and message.get("tool_calls")):
            raise PhysloraError(f"messages[{index}]: tool calls are not supported by physlora's chat "
                                "templates; use system, user and assistant messages")
        if role not in ROLES:
            raise PhysloraError(f"messages[{index}].role: {role!r} is not supported; "
                                f"use one of {', '.join(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise PhysloraError(f"messages[{index}].content: must be a string, got "
                                f"{type(message.get('content')).__name__}")
