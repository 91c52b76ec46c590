"""Generate text with a model: `python generate.py "Why does a tall box tip over?"`.

Prints only the generated text for each prompt (streamed when there is one prompt) and a
one-line summary on stderr.
"""
import argparse
import json
import sys
import time

from common.cli import add_model_arguments, load_model_from_args, seed_number
from common.errors import PhysloraError, user_errors_are_one_line
from model.sampler import SamplingParams, generate
from model.tokenizer import TextStream


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompts", nargs="*", metavar="PROMPT",
                        help="one or more prompts; none or '-' reads one prompt from stdin")
    add_model_arguments(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--chat", dest="chat", action="store_true", default=None,
                      help="wrap each prompt as a user turn in the model's chat template "
                           "(default for models that have one)")
    mode.add_argument("--raw", dest="chat", action="store_false",
                      help="continue the prompt text as is (default for base models)")
    parser.add_argument("--system", default=None,
                        help="system message in chat mode; default: the model template's own")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="default: %(default)s")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="0 = greedy decoding; default: %(default)s")
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest tokens (0 = all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass; default: %(default)s")
    parser.add_argument("--seed", type=seed_number, default=0, help="sampling seed; default: %(default)s")
    parser.add_argument("--decode", choices=("auto", "eager", "graph"), default="auto",
                        help="how each decoding step runs: 'graph' replays it as a CUDA graph (GPU only; "
                             "fixed shapes, no Python per kernel), 'eager' calls the model; default: auto, "
                             "a graph on CUDA, eager elsewhere")
    parser.add_argument("--jsonl", action="store_true",
                        help="print one JSON line per prompt, {\"prompt\": …, \"output\": …}, instead of the bare "
                             "texts (which can't be told apart once an answer spans several lines)")
    args = parser.parse_args(argv)
    if args.max_new_tokens < 1:
        parser.error("--max-new-tokens must be at least 1")
    if not args.temperature >= 0 or not 0 < args.top_p <= 1 or args.top_k < 0:  # `not >=`: refuses nan too
        parser.error("need --temperature >= 0, 0 < --top-p <= 1 and --top-k >= 0")
    return args


def build_prompt_ids(tokenizer, text: str, chat: bool, system) -> list:
    if not chat:
        return tokenizer.encode(text, add_special_tokens=True)
    messages = ([{"role": "system", "content": system}] if system is not None else [])
    messages.append({"role": "user", "content": text})
    return tokenizer.encode(tokenizer.apply_chat_template(messages, add_generation_prompt=True))


def main(argv=None):
    args = parse_args(argv)
    # From stdin, the newline `echo` ends the text with is not part of the prompt (as in the shell's $(...)).
    prompts = args.prompts if args.prompts and args.prompts != ["-"] else [sys.stdin.read().removesuffix("\n")]
    model, tokenizer = load_model_from_args(args)
    chat = tokenizer.has_chat_template if args.chat is None else args.chat
    if chat and not tokenizer.has_chat_template:
        raise PhysloraError(f"{args.model}: has no chat template; use --raw")
    prompt_ids = [build_prompt_ids(tokenizer, text, chat, args.system) for text in prompts]
    for number, ids in enumerate(prompt_ids, 1):
        if not ids:
            raise PhysloraError(f"prompt {number} is empty: a raw completion needs some text to continue")
        if len(ids) + args.max_new_tokens > model.config.max_position_embeddings:
            raise PhysloraError(f"prompt {number} ({len(ids)} tokens) + --max-new-tokens {args.max_new_tokens} "
                                f"exceeds {args.model}'s context of {model.config.max_position_embeddings} tokens; "
                                "lower --max-new-tokens")
    params = SamplingParams(args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed)

    streamed = TextStream(tokenizer)

    def stream(row, token):
        print(streamed.push(token), end="", flush=True)

    start = time.perf_counter()
    outputs = generate(model, prompt_ids, params, tokenizer.stop_ids, tokenizer.pad_id,
                       on_token=stream if len(prompts) == 1 and not args.jsonl else None, decode=args.decode)
    seconds = time.perf_counter() - start
    if len(prompts) == 1 and not args.jsonl:
        print(streamed.finish())
    else:
        for prompt, ids in zip(prompts, outputs):
            output = tokenizer.decode(ids)
            print(json.dumps({"prompt": prompt, "output": output}, ensure_ascii=False) if args.jsonl else output)
    new_tokens = sum(len(ids) for ids in outputs)
    print(f"generated {new_tokens} tokens for {len(prompts)} prompt(s) in {seconds:.1f} s "
          f"({new_tokens / seconds:.1f} tokens/s) with {args.model}"
          f"{f' + adapter {args.adapter}' if args.adapter else ''}", file=sys.stderr)


if __name__ == "__main__":
    with user_errors_are_one_line():
        main()
