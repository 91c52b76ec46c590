"""Chat templates rendered in Python, checked byte for byte against transformers' Jinja rendering.

Each official template (tests/fixtures/chat_templates/, see SOURCES.md there) is put in a small
tokenizer folder of the matching vocabulary; transformers' AutoTokenizer renders it, we compare.
"""
import re

import pytest
from transformers import AutoTokenizer

from common.errors import PhysloraError
from model.chat_templates import DEFAULT_DATE, KNOWN_TEMPLATES, fingerprint
from model.tokenizer import Tokenizer
from tokenizer_folders import CONVERSATIONS, OFFICIAL_TEMPLATES, chatml_folder, folder_for, official_template


@pytest.fixture(scope="module")
def template_pairs(tmp_path_factory):
    """For each official template: (our Tokenizer, transformers' AutoTokenizer) on the same folder."""
    pairs = {}
    for name in OFFICIAL_TEMPLATES:
        folder = folder_for(tmp_path_factory.mktemp(name), name)
        pairs[name] = Tokenizer.from_folder(folder), AutoTokenizer.from_pretrained(folder)
    return pairs


@pytest.mark.parametrize("add_generation_prompt", [False, True])
@pytest.mark.parametrize("conversation", list(CONVERSATIONS))
@pytest.mark.parametrize("template", OFFICIAL_TEMPLATES)
def test_chat_template_is_byte_identical_to_transformers(template_pairs, template, conversation,
                                                         add_generation_prompt):
    ours, hf = template_pairs[template]
    messages = CONVERSATIONS[conversation]
    # Llama 3.2's template prints today's date unless given one; we default to a fixed date.
    expected = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                      date_string=DEFAULT_DATE)
    assert ours.apply_chat_template(messages, add_generation_prompt) == expected


@pytest.mark.parametrize("template", ["llama-3.1-instruct", "llama-3.2-instruct"])
def test_llama3_date_can_be_overridden(template_pairs, template):
    ours, hf = template_pairs[template]
    messages = CONVERSATIONS["user_only"]
    rendered = ours.apply_chat_template(messages, date_string="01 Jan 2025")
    assert "Today Date: 01 Jan 2025\n" in rendered
    assert rendered == hf.apply_chat_template(messages, tokenize=False, date_string="01 Jan 2025")


def test_llama3_2_default_date_does_not_depend_on_today(template_pairs):
    ours, _ = template_pairs["llama-3.2-instruct"]
    assert f"Today Date: {DEFAULT_DATE}\n" in ours.apply_chat_template(CONVERSATIONS["user_only"])


def test_llama3_chat_prompt_encodes_with_a_single_bos_like_transformers(template_pairs):
    ours, hf = template_pairs["llama-3.2-instruct"]
    messages = CONVERSATIONS["multi_turn"]
    ids = ours.encode(ours.apply_chat_template(messages, add_generation_prompt=True))
    assert ids == list(hf.apply_chat_template(messages, add_generation_prompt=True, date_string=DEFAULT_DATE,
                                              return_dict=True)["input_ids"])
    assert ids.count(ours.bos_id) == 1 and ids[0] == ours.bos_id


def test_qwen2_5_math_default_system_prompt_is_read_from_the_template(tmp_path):
    qwen25 = official_template("qwen2.5-instruct")
    # Qwen2.5-Math-Instruct ships Qwen2.5's template with this default prompt; `\\boxed` is Jinja for `\boxed`.
    math = qwen25.replace("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
                          "Please reason step by step, and put your final answer within \\\\boxed{}.")
    folder = chatml_folder(tmp_path, math)
    rendered = Tokenizer.from_folder(folder).apply_chat_template(CONVERSATIONS["user_only"], True)
    assert "within \\boxed{}.<|im_end|>" in rendered
    assert rendered == AutoTokenizer.from_pretrained(folder).apply_chat_template(
        CONVERSATIONS["user_only"], tokenize=False, add_generation_prompt=True)


def test_every_known_template_fingerprint_comes_from_an_official_template():
    assert set(KNOWN_TEMPLATES) == {fingerprint(official_template(name)) for name in OFFICIAL_TEMPLATES}


@pytest.mark.parametrize("template, chat_format", [("qwen2-instruct", "chatml"), ("qwen2.5-instruct", "chatml"),
                                                   ("llama-3-instruct", "llama3"), ("llama-3.1-instruct", "llama3")])
def test_chat_format_comes_from_the_template(template_pairs, template, chat_format):
    assert template_pairs[template][0].chat_format == chat_format


def test_unknown_chat_template_is_refused_naming_the_source(tmp_path):
    folder = chatml_folder(tmp_path, "{% for m in messages %}{{ m['content'] }}{% endfor %}")
    tokenizer = Tokenizer.from_folder(folder)
    assert tokenizer.has_chat_template
    with pytest.raises(PhysloraError, match=re.escape(f"{folder}: its chat template is not one")):
        tokenizer.apply_chat_template(CONVERSATIONS["user_only"])


def test_missing_chat_template_is_reported_naming_the_source(tmp_path):
    folder = chatml_folder(tmp_path, None)
    tokenizer = Tokenizer.from_folder(folder)
    assert not tokenizer.has_chat_template
    with pytest.raises(PhysloraError, match=re.escape(f"{folder}: has no chat template")):
        tokenizer.apply_chat_template(CONVERSATIONS["user_only"])


@pytest.mark.parametrize("messages, blamed", [
    ([], "messages: the conversation is empty"),
    ([{"role": "tool", "content": "42"}], r"messages\[0\]: tool calls"),
    ([{"role": "assistant", "content": "", "tool_calls": [{"name": "f"}]}], r"messages\[0\]: tool calls"),
    ([{"role": "narrator", "content": "Once"}], r"messages\[0\]\.role: 'narrator'"),
    ([{"role": "user", "content": ["a", "b"]}], r"messages\[0\]\.content: must be a string"),
])
def test_unsupported_messages_are_refused(template_pairs, messages, blamed):
    ours, _ = template_pairs["qwen2.5-instruct"]
    with pytest.raises(PhysloraError, match=blamed):
        ours.apply_chat_template(messages)


def test_tools_are_refused(template_pairs):
    ours, _ = template_pairs["qwen2.5-instruct"]
    with pytest.raises(PhysloraError, match="tools: tool calling is not supported"):
        ours.apply_chat_template(CONVERSATIONS["user_only"], tools=[{"name": "integrate"}])
