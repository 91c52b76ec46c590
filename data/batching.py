"""From records to training batches: chat-formatted examples, loss masks, length buckets, packing.

An example is one record as the model will see it, in its own chat template (ChatML shown):

    prompt  "<|im_start|>system\\n…<|im_end|>\\n<|im_start|>user\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n"
    target  "{target}<|im_end|>"                        (the assistant turn through its end-of-turn token)
    input_ids = prompt ids + target ids;   labels = IGNORE_INDEX on the prompt, the token ids on the target

The two halves are tokenized separately, which is exactly what generation sees: the prompt as
generate.py encodes it, then the tokens the model must produce, ending with the token that stops
generation. The loss (model/loss.py) scores position t on labels[t+1]; every example starts with
a prompt token (label IGNORE_INDEX), so nothing is ever predicted across two packed examples.

Too long for max_len: the prompt loses tokens from its start (the system prompt goes first) and the
target is kept whole; an example whose target alone does not fit is left out. Both are counted.

Answer lines only. A physics target states its answer first and then its reasoning:
    "YES\nFAILURE_MODE: slipping\nREASONING: Friction holds at most 2 × 0.48 × 3.4 = 3.26 N, …"
The answer is ~10 of its ~70 tokens, so under a per-token loss the decision gets a seventh of the
gradient and the arithmetic of the reasoning the rest. With reasoning_share s < 1, a seeded share
1 − s of such examples keep only their answer lines (no end-of-turn token; nothing after them is
scored, so nothing after them needs computing): the model still learns to write the reasoning from
the others, the decision weighs about (1 − s)·70/10 times more, and those examples are a third
shorter. Targets without a "REASONING:" line after their first are always kept whole.

Batches. A micro-batch is a list of rows, a row a list of example indices.
  - bucketed (default): one example per row. Each epoch shuffles the examples, sorts each
    megabatch of BUCKET_BATCHES micro-batches by length, cuts it into micro-batches and shuffles
    those: neighbours in length share a batch, so padding to the batch's longest row wastes
    little, while the order stays random. Rows are right-padded: plain causal attention never
    lets a real token see a pad, and pads carry no label.
  - packed: examples are laid end to end in rows of up to max_len tokens (next-fit, in shuffled
    order). Positions restart at 0 for each example and the attention mask is block-diagonal
    causal, so every packed example computes exactly what it would alone.
An epoch's plan is a pure function of (seed, epoch): a resumed run rebuilds it, with no loader
state to save.
"""
import hashlib
import math
import random
from dataclasses import dataclass
from typing import Optional

import torch

from common.errors import PhysloraError
from data.schema import load_records
from model.loss import IGNORE_INDEX

END_OF_TURN = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>"}
BUCKET_BATCHES = 50  # micro-batches per length-sorted megabatch (as transformers' group_by_length)
PAD_MULTIPLE = 32  # train.py's default --pad-multiple


@dataclass
class Example:
    input_ids: list
    prompt_length: int  # input_ids[:prompt_length] is context; the rest is the target to learn


@dataclass
class Encoded:
    examples: list
    records: int    # records read
    truncated: int  # examples whose prompt lost its first tokens
    dropped: int    # records left out: the target alone is longer than max_len
    answer_only: int = 0  # examples cut after their answer lines (reasoning_share < 1)


@dataclass
class Batch:
    input_ids: torch.Tensor            # (rows, length)
    labels: torch.Tensor               # (rows, length), IGNORE_INDEX on prompts and padding
    positions: Optional[torch.Tensor]  # (rows, length) when packed: 0, 1, … for each example
    mask: Optional[torch.Tensor]       # (rows, 1, length, length) when packed: True = may attend
    tokens: int                        # real (non-padding) tokens
    target_tokens: int                 # tokens the loss scores
    padding_tokens: int


def context_of(record: dict) -> list:
    """The messages before a record's prompt: an imported chat's system message and earlier turns (in meta)."""
    meta = record.get("meta") or {}
    system = [{"role": "system", "content": meta["system"]}] if "system" in meta else []
    return system + list(meta.get("history", []))


def chat_prompt_text(tokenizer, prompt: str, context: list = ()) -> str:
    """The prompt as the user turn of the model's chat template (after the `context` messages), through the
    assistant header."""
    return tokenizer.apply_chat_template([*context, {"role": "user", "content": prompt}], add_generation_prompt=True)


def prompt_and_target_ids(tokenizer, prompt: str, target: str, context: list = ()) -> tuple:
    """Token ids of the templated prompt (through the assistant header) and of the assistant turn."""
    user = [*context, {"role": "user", "content": prompt}]
    prompt_text = chat_prompt_text(tokenizer, prompt, context)
    conversation = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": target}])
    end = END_OF_TURN[tokenizer.chat_format]
    turn = conversation[len(prompt_text):]
    # The template may write more after the end-of-turn token ("\n" in ChatML): not part of the answer.
    target_text = turn[:turn.rindex(end) + len(end)]
    return tokenizer.encode(prompt_text), tokenizer.encode(target_text)


def answer_lines(target: str) -> Optional[str]:
    """The answer lines of a target that states its answer before a "REASONING:" line, else None."""
    cut = target.find("\nREASONING:")
    return target[:cut + 1] if cut > 0 else None


def answer_token_count(tokenizer, target_ids: list, answer: str) -> int:
    """The fewest leading target tokens that spell out `answer` (counted on the target's own tokens,
    since encoding the answer alone may split its last characters differently)."""
    return next(k for k in range(1, len(target_ids) + 1) if len(tokenizer.decode(target_ids[:k])) >= len(answer))


def encode_records(records: list, tokenizer, max_len: int, reasoning_share: float = 1.0, seed: int = 0) -> Encoded:
    """Examples of the records; with reasoning_share < 1, a seeded share of the targets that lead with their
    answer lines keep only those (see the module docstring)."""
    examples, truncated, dropped, answer_only = [], 0, 0, 0
    cut_rng = random.Random(f"{seed}/answer-lines")
    for record in records:
        context = context_of(record)
        prompt_ids, target_ids = prompt_and_target_ids(tokenizer, record["prompt"], record["target"], context)
        answer = answer_lines(record["target"])
        cut = answer is not None and cut_rng.random() >= reasoning_share
        if cut:
            target_ids = target_ids[:answer_token_count(tokenizer, target_ids, answer)]
        room = max_len - len(target_ids)  # for prompt tokens; at least one, to predict the first target token
        if room < 1:
            dropped += 1
            continue
        if len(prompt_ids) > room:
            prompt_ids, truncated = prompt_ids[-room:], truncated + 1
        examples.append(Example(prompt_ids + target_ids, len(prompt_ids)))
        answer_only += cut
    return Encoded(examples, len(records), truncated, dropped, answer_only)


def epoch_plan(lengths: list, micro_batch: int, seed: int, epoch: int, pack_len: Optional[int] = None) -> list:
    """This epoch's micro-batches (lists of rows of example indices), in training order."""
    rng = random.Random(f"{seed}/{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if pack_len is None:
        batches = []
        megabatch = micro_batch * BUCKET_BATCHES
        for start in range(0, len(order), megabatch):
            by_length = sorted(order[start:start + megabatch], key=lengths.__getitem__)
            batches += [[[i] for i in by_length[k:k + micro_batch]] for k in range(0, len(by_length), micro_batch)]
        rng.shuffle(batches)
        # The longest micro-batch goes first (as transformers' length-grouped sampler does): if memory runs
        # out, it runs out in the first step, not hours in, and the run's peak memory shows in step 1.
        longest = max(range(len(batches)), key=lambda b: max(lengths[i] for [i] in batches[b]))
        batches[0], batches[longest] = batches[longest], batches[0]
        return batches
    rows, row, used = [], [], 0
    for i in order:
        if row and used + lengths[i] > pack_len:
            rows.append(row)
            row, used = [], 0
        row.append(i)
        used += lengths[i]
    rows.append(row)
    return [rows[k:k + micro_batch] for k in range(0, len(rows), micro_batch)]


def training_windows(lengths: list, micro_batch: int, accumulation: int, epochs: int, seed: int,
                     pack_len: Optional[int] = None) -> list:
    """[(epochs done after this step, [micro-batch, …]), …]: one entry per optimizer step of the run.

    An epoch's last window may hold fewer micro-batches; the loss is normalised by target tokens,
    so that window is just a smaller batch.
    """
    windows = []
    for epoch in range(epochs):
        batches = epoch_plan(lengths, micro_batch, seed, epoch, pack_len)
        count = math.ceil(len(batches) / accumulation)
        windows += [(epoch + (w + 1) / count, batches[w * accumulation:(w + 1) * accumulation]) for w in range(count)]
    return windows


def evaluation_batches(lengths: list, micro_batch: int) -> list:
    """Every example once, sorted by length (least padding), one example per row."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [[[i] for i in order[k:k + micro_batch]] for k in range(0, len(order), micro_batch)]


def batch_width(lengths: list, multiple: int = 1) -> int:
    """Padded length of a micro-batch whose rows hold `lengths` tokens: the longest, rounded up to `multiple`."""
    return -(-max(1, *lengths) // multiple) * multiple


def collate(examples: list, rows: list, pad_id: int, device="cpu", multiple: int = 1) -> Batch:
    """Tensors for a micro-batch, right-padded to its longest row rounded up to `multiple` tokens (a row of
    no example: padding only). A multiple bounds the number of distinct shapes the matmuls see in a run."""
    width = batch_width([sum(len(examples[i].input_ids) for i in row) for row in rows], multiple)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    segments = torch.full((len(rows), width), -1, dtype=torch.long)  # which example of the row; -1 = padding
    for r, row in enumerate(rows):
        start = 0
        for s, i in enumerate(row):
            example = examples[i]
            end = start + len(example.input_ids)
            input_ids[r, start:end] = torch.tensor(example.input_ids)
            labels[r, start + example.prompt_length:end] = input_ids[r, start + example.prompt_length:end]
            positions[r, start:end] = torch.arange(end - start)
            segments[r, start:end] = s
            start = end
    tokens = int((segments >= 0).sum())
    batch = Batch(input_ids, labels, None, None, tokens, int((labels[:, 1:] != IGNORE_INDEX).sum()),
                  input_ids.numel() - tokens)
    if any(len(row) > 1 for row in rows):
        # Attend causally within one's own example. Padding forms a segment of its own, so no
        # query row is fully masked (that would give NaN) and no real token ever sees a pad.
        causal = torch.ones(width, width, dtype=torch.bool).tril()
        batch.mask = ((segments[:, :, None] == segments[:, None, :]) & causal)[:, None].to(device)
        batch.positions = positions.to(device)
    batch.input_ids, batch.labels = input_ids.to(device), labels.to(device)
    return batch


def padding_share(examples: list, plan: list, multiple: int = 1) -> float:
    """Share of padding among all token slots of these micro-batches (collated with `multiple`)."""
    slots = real = 0
    for rows in plan:
        lengths = [sum(len(examples[i].input_ids) for i in row) for row in rows]
        slots += len(rows) * batch_width(lengths, multiple)
        real += sum(lengths)
    return 1 - real / slots if slots else 0.0


def check_not_empty(encoded: Encoded, source: str, max_len: int, split: Optional[str]) -> None:
    if encoded.records == 0 and split is not None:
        raise PhysloraError(f"{source}: no record with \"split\": \"{split}\"; one file is split by that field of "
                            "its records (train and val both needed), or pass a data folder with train.jsonl and "
                            "val.jsonl (python generate_data.py import makes one from your file)")
    if encoded.records == 0:
        raise PhysloraError(f"{source}: no records; pass a data folder with train.jsonl and val.jsonl "
                            "(python generate_data.py physics)")
    if not encoded.examples:
        raise PhysloraError(f"{source}: every target is longer than --max-len {max_len} tokens; "
                            "raise --max-len")


def load_examples(path: str, tokenizer, max_len: int, reasoning_share: float = 1.0, seed: int = 0,
                  split: Optional[str] = None) -> tuple:
    """(examples, report) of a split file, or of the records of a file whose split field is `split`; the report
    (path, sha256, counts) goes to the run's config."""
    encoded = encode_records(load_records(path, split), tokenizer, max_len, reasoning_share, seed)
    check_not_empty(encoded, path, max_len, split)
    with open(path, "rb") as f:
        report = {"path": path, "sha256": hashlib.sha256(f.read()).hexdigest(), "records": encoded.records,
                  "examples": len(encoded.examples), "truncated": encoded.truncated, "dropped": encoded.dropped,
                  "answer_only": encoded.answer_only}
    return encoded.examples, report
