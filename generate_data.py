"""Make training and test data: physics scenarios, physics QA, verifiable puzzles, or import your own.

    python generate_data.py physics [--out data_out/physics] [--seed 0] [--difficulty 0.2] [--answer-style checks]
    python generate_data.py qa      [--out data_out/qa]
    python generate_data.py puzzles [--out data_out/puzzles] [--difficulty 1-10]
    python generate_data.py import FILE_FOLDER_OR_HUB_ID [--out data_out/import] [--skip-invalid]

Each writes OUT/train.jsonl, OUT/val.jsonl, OUT/test*.jsonl and OUT/card.json (see data/schema.py),
prints the counts per split and label, and ends with a one-line summary. Same seed, same bytes.
"""
import argparse
import sys

from common.errors import PhysloraError, user_errors_are_one_line
from data import importer, physics_dataset, puzzles, qa_dataset, teacher
from data.schema import check_output_dir, summary_lines, write_dataset


def run_physics(args) -> tuple:
    sizes = {"train": args.train, "val": args.val, "test_seen": args.test_seen, "test_unseen": args.test_unseen}
    if args.teacher_url and args.answer_style == "checks":
        raise PhysloraError("--teacher-url writes REASONING lines; --answer-style checks has none, drop one")
    splits, card = physics_dataset.generate(sizes, args.seed, args.difficulty, args.contrast, args.answer_style)
    if args.teacher_url:
        if not args.teacher_model:
            raise PhysloraError("--teacher-url needs --teacher-model NAME")
        chosen = [split.strip() for split in args.teacher_splits.split(",")]
        unknown = [split for split in chosen if split not in splits]
        if unknown:
            raise PhysloraError(f"--teacher-splits: unknown split {unknown[0]!r}; choose from {', '.join(splits)}")
        asked = [record for split in chosen for record in splits[split]]
        card["teacher"] = {"url": args.teacher_url, "model": args.teacher_model, "splits": args.teacher_splits,
                           **teacher.apply_teacher(asked, args.teacher_url, args.teacher_model,
                                                   args.teacher_key_env, args.teacher_timeout)}
    return splits, card, physics_dataset.label_of


def run_qa(args) -> tuple:
    splits, card = qa_dataset.generate({"train": args.train, "val": args.val, "test": args.test}, args.seed)
    return splits, card, qa_dataset.label_of


def run_puzzles(args) -> tuple:
    splits, card = puzzles.generate({"train": args.train, "val": args.val, "test": args.test}, args.seed,
                                    puzzles.parse_difficulty(args.difficulty), args.cases)
    return splits, card, puzzles.label_of


def run_import(args) -> tuple:
    splits, card = importer.import_file(args.source, args.seed, args.val_fraction, args.test_fraction,
                                        args.skip_invalid)
    return splits, card, importer.label_of


def add_common(parser: argparse.ArgumentParser, kind: str) -> None:
    parser.add_argument("--out", default=f"data_out/{kind}", help="output folder; default: %(default)s")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files; default: %(default)s")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the data files of a non-empty --out (otherwise refused)")


def record_count(text: str) -> int:
    """argparse type of the split sizes: a whole number of records, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of records (0 or more)")
    return int(text)


def add_sizes(parser: argparse.ArgumentParser, sizes: dict) -> None:
    for split, n in sizes.items():
        parser.add_argument(f"--{split.replace('_', '-')}", type=record_count, default=n, dest=split,
                            help=f"records in {split}; default: %(default)s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    physics = commands.add_parser("physics", help="robot-manipulation scenarios labelled by physics")
    add_common(physics, "physics")
    add_sizes(physics, physics_dataset.DEFAULT_SIZES)
    physics.add_argument("--difficulty", type=float, default=physics_dataset.DEFAULT_DIFFICULTY,
                         help="0 = clear cases far from thresholds, 1 = all within a few %% of a threshold; "
                              "default: %(default)s")
    physics.add_argument("--contrast", action="store_true",
                         help="train split: follow each scenario with a contrast twin when one exists (same family, "
                              "words and units, one number redrawn so that the outcome changes); the counts per "
                              "outcome stay exact")
    physics.add_argument("--answer-style", choices=physics_dataset.ANSWER_STYLES, default="verdict",
                         help="verdict: the target is YES/NO, FAILURE_MODE and a REASONING sentence; checks: the "
                              "target is a check program, one arithmetic line per check, whose verdict a calculator "
                              "computes at evaluation (data/check_program.py); default: %(default)s")
    physics.add_argument("--teacher-url", help="OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1) whose "
                                               "model writes the REASONING; labels stay from physics; default: none")
    physics.add_argument("--teacher-model", help="model name sent to the teacher endpoint")
    physics.add_argument("--teacher-key-env", default="OPENAI_API_KEY",
                         help="environment variable holding the teacher's API key (unset: no key); "
                              "default: %(default)s")
    physics.add_argument("--teacher-splits", default="train",
                         help="comma-separated splits whose reasoning the teacher writes; default: %(default)s")
    physics.add_argument("--teacher-timeout", type=float, default=60.0,
                         help="seconds to wait for each teacher reply; default: %(default)s")
    physics.set_defaults(run=run_physics)

    qa = commands.add_parser("qa", help="physics problems with exact answers (numeric and multiple choice)")
    add_common(qa, "qa")
    add_sizes(qa, qa_dataset.DEFAULT_SIZES)
    qa.set_defaults(run=run_qa)

    puzzle = commands.add_parser("puzzles", help="arithmetic, reverse Polish and bracket puzzles solved by code")
    add_common(puzzle, "puzzles")
    add_sizes(puzzle, puzzles.DEFAULT_SIZES)
    puzzle.add_argument("--difficulty", default="1-10",
                        help="difficulty or range of difficulties, 1 to 10; default: %(default)s")
    puzzle.add_argument("--cases", type=int, default=puzzles.DEFAULT_CASES,
                        help="input/output test cases per problem; default: %(default)s")
    puzzle.set_defaults(run=run_puzzles)

    imports = commands.add_parser("import", help="normalise your own instruction data (Alpaca, Q/A, "
                                                 "prompt/completion, chat) into train/val/test")
    imports.add_argument("source", help="a .json or .jsonl file, a folder of them (each imported), or a "
                                        "Hugging Face dataset id (owner/name) with JSON/JSONL files")
    add_common(imports, "import")
    imports.add_argument("--val-fraction", type=float, default=0.05, help="share of records in val; "
                                                                          "default: %(default)s")
    imports.add_argument("--test-fraction", type=float, default=0.1, help="share of records in test; "
                                                                          "default: %(default)s")
    imports.add_argument("--skip-invalid", action="store_true",
                         help="skip and count malformed records instead of stopping at the first one")
    imports.set_defaults(run=run_import)
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    check_output_dir(args.out, args.overwrite)
    splits, card, label_of = args.run(args)
    card = write_dataset(args.out, splits, card, label_of)
    print(f"{args.command}: records per split and label")
    print("\n".join(summary_lines(card)))
    for key in ("teacher", "import"):
        if key in card:
            print(f"  {key}: " + ", ".join(f"{k} {v}" for k, v in card[key].items() if isinstance(v, int)))
    sizes = ", ".join(f"{split} {len(records)}" for split, records in splits.items())
    print(f"{args.command}: wrote {sum(map(len, splits.values()))} records ({sizes}) to {args.out}")


if __name__ == "__main__":
    with user_errors_are_one_line():
        main(sys.argv[1:])
