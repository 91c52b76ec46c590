"""Answer every record with a model: batched, chat-templated, resumable.

Each record's prompt goes into the model's chat template exactly as in training (the user turn,
then the assistant header); the model continues until its end-of-turn token or the task's token
budget, and only the new tokens are decoded. Records are batched by prompt length (least
padding) in a fixed order, so a batch is the same batch in every run of the same settings; with
sampling, each batch draws from its own seed (settings.seed + batch number), so an interrupted
run that redoes the unfinished batches produces exactly the text an uninterrupted one would, and
so does a run whose batches are shared among processes (evaluate.py under torchrun).

Finished batches are appended to a JSONL file, one line per record:
    {"id": ..., "outputs": [text, ...], "hit_limit": [bool, ...]}
`hit_limit` marks outputs cut off by the token budget (reported: truncated answers were a
problem in one reference notebook).
"""
import json
import os
from dataclasses import dataclass
from typing import Optional

from common import distributed
from common.progress import Progress
from common.runs import jsonl_entries
from data.batching import chat_prompt_text, context_of
from data.check_program import answered_by_program
from model.sampler import SamplingParams, generate

# Token budgets per kind of answer: above the longest teacher target of its kind, so a model that answers
# in the trained format is never cut off, and one that rambles is stopped soon (a base model that never
# writes the format runs to the budget on most records: the budget sets the cost of evaluating it).
# Longest targets in SmolLM2's tokens, end-of-turn included, over the default data of seeds 0-7: scenario
# verdicts 143, check programs 128.
MAX_NEW_TOKENS = {"physics_scenario": 160, "physics_scenario/checks": 136, "physics_numeric": 384,
                  "physics_mcq": 384, "puzzle_arithmetic": 384, "puzzle_rpn": 384, "puzzle_brackets": 384,
                  "instruction": 512}


def answer_kind(record: dict) -> str:
    """The MAX_NEW_TOKENS key of a record: its task, with "/checks" when it is answered by a check program."""
    return record["task"] + ("/checks" if answered_by_program(record) else "")


@dataclass
class GenerationSettings:
    batch_size: int = 16
    max_new_tokens: Optional[int] = None  # None: MAX_NEW_TOKENS of each record's kind of answer
    samples: int = 1                      # outputs per record (pass@k needs several)
    temperature: float = 0.0              # 0 = greedy
    top_p: float = 1.0
    seed: int = 0

    def budget(self, record: dict) -> int:
        return self.max_new_tokens or MAX_NEW_TOKENS.get(answer_kind(record), 512)


def prompt_ids(tokenizer, record: dict) -> list:
    """The record's prompt in the chat template, through the assistant header (as train.py sees it)."""
    return tokenizer.encode(chat_prompt_text(tokenizer, record["prompt"], context_of(record)))


def plan_batches(records: list, prompts: list, batch_size: int) -> list:
    """Lists of record indices: same kind of answer (same budget) and similar prompt lengths, in a fixed order."""
    kinds = [answer_kind(record) for record in records]
    keyed = sorted(range(len(records)), key=lambda i: (kinds[i], -len(prompts[i]), i))
    batches, current = [], []
    for i in keyed:
        if current and (len(current) == batch_size or kinds[current[0]] != kinds[i]):
            batches.append(current)
            current = []
        current.append(i)
    return batches + ([current] if current else [])


def resume_outputs(path: str) -> dict:
    """id -> entry of a (possibly interrupted) outputs file, cutting a half-written last line off the file as it
    reads: the lines appended next must start on a line of their own, or the first of them would be lost to the
    next read as well."""
    finished, whole = {}, 0
    if not os.path.exists(path):
        return finished
    with open(path, "rb+") as f:
        for entry, line in jsonl_entries(f):
            if not line.endswith(b"\n"):
                break
            finished[entry["id"]] = entry
            whole += len(line)
        f.truncate(whole)
    return finished


def resume_outputs_on_rank0(path: str) -> dict:
    """`resume_outputs` read by rank 0 alone, given to every process: under torchrun rank 0 may still be appending
    to the file (multiple-choice answers), and all processes must plan the same batches from the same lines."""
    return distributed.from_rank0(resume_outputs(path) if distributed.rank() == 0 else None)


def answer_batch(model, tokenizer, records: list, prompts: list, batches: list, number: int,
                 settings: GenerationSettings) -> list:
    """The outputs entries of batch `number` (prompts[i]: record i's token ids); its seed depends on its number alone."""
    batch = batches[number]
    budget = settings.budget(records[batch[0]])
    samples = []
    for sample in range(settings.samples):
        params = SamplingParams(budget, settings.temperature, 0, settings.top_p,
                                seed=settings.seed + number + sample * len(batches))
        samples.append(generate(model, [prompts[i] for i in batch], params, tokenizer.stop_ids, tokenizer.pad_id))
    entries = []
    for row, i in enumerate(batch):
        ids = [sample[row] for sample in samples]
        entries.append({"id": records[i]["id"], "outputs": [tokenizer.decode(x) for x in ids],
                        "hit_limit": [len(x) >= budget for x in ids]})
    return entries


def answer_records(model, tokenizer, records: list, settings: GenerationSettings, path: str) -> dict:
    """Generate for every record not yet in `path`, appending each finished batch; returns id -> entry.

    Under torchrun the processes answer the unfinished batches in rounds, one batch each; rank 0
    gathers each round's answers, appends them and returns them all (the others return what they
    read). Each batch is generated as in a single process (same rows, same seed): same answers.
    """
    finished = resume_outputs_on_rank0(path)
    prompts = [prompt_ids(tokenizer, record) for record in records]
    batches = plan_batches(records, prompts, settings.batch_size)
    pending = [number for number, batch in enumerate(batches) if any(records[i]["id"] not in finished for i in batch)]
    progress = Progress(len(batches), start=len(batches) - len(pending))
    world = distributed.world_size()
    with open(path, "a", encoding="utf-8") as out:
        for first in range(0, len(pending), world):
            numbers = pending[first:first + world]
            mine = [entry for number in distributed.shard(numbers)
                    for entry in answer_batch(model, tokenizer, records, prompts, batches, number, settings)]
            entries = distributed.gather(mine)
            finished.update((entry["id"], entry) for entry in entries)
            out.writelines(json.dumps(entry) + "\n" for entry in entries)
            out.flush()
            batch = batches[numbers[-1]]
            progress.update(len(batches) - len(pending) + first + len(numbers),
                            f"batch of {len(batch)} {records[batch[0]]['task']}")
    progress.close()
    return finished
