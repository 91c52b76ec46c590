"""Multiple choice by log-likelihood, the way standard harnesses score it, without generating.

For a question q and options A, B, C, ... the model picks

    argmax_L  log p("Answer: L" | chat template of q, after the record's system message and earlier turns)

summed over the tokens of the continuation `Answer: L` (the last line the prompt asks for),
without the end-of-turn token, which every option shares. All options of a question go
through the model as one batch; ties go to the earlier letter.
"""
import torch

from data.batching import context_of, prompt_and_target_ids
from evaluation.metrics import option_letters
from model.loss import IGNORE_INDEX


@torch.inference_mode()
def option_logliks(model, tokenizer, record: dict) -> dict:
    """letter -> summed log-probability of its continuation `Answer: <letter>`."""
    letters = option_letters(record["answer"])
    rows = []
    for letter in letters:
        prompt, target = prompt_and_target_ids(tokenizer, record["prompt"], f"Answer: {letter}", context_of(record))
        continuation = target[:-1]  # without the end-of-turn token
        rows.append((prompt + continuation, len(prompt)))
    length = max(len(ids) for ids, _ in rows)
    device = model.inv_freq.device
    input_ids = torch.full((len(rows), length), tokenizer.pad_id, dtype=torch.long, device=device)
    labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long, device=device)
    for row, (ids, prompt_len) in enumerate(rows):  # right padding: causal attention never sees it
        input_ids[row, :len(ids)] = torch.tensor(ids)
        labels[row, prompt_len - 1:len(ids) - 1] = torch.tensor(ids[prompt_len:])
    logprobs = model(input_ids).float().log_softmax(dim=-1)
    scored = labels != IGNORE_INDEX
    picked = logprobs.gather(-1, labels.clamp(min=0)[..., None])[..., 0] * scored
    return {letter: float(value) for letter, value in zip(letters, picked.sum(dim=-1))}


def choose_option(model, tokenizer, record: dict) -> str:
    """The output scored for the record: `Answer: <likeliest letter>`."""
    logliks = option_logliks(model, tokenizer, record)
    return f"Answer: {max(logliks, key=lambda letter: (logliks[letter], -ord(letter)))}"
