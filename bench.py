"""physlora benchmarks: `python bench.py <suite> [options]`, one subcommand per suite.

A suite is a module under benchmarks/ with a one-line docstring, `add_arguments(parser)` and
`run(args)`; register it in SUITES. Results go to benchmarks/results/<device>-<date>.json.
"""
import argparse
import importlib

from common.errors import user_errors_are_one_line

SUITES = {"lora": "benchmarks.lora_suite", "train": "benchmarks.train_suite",
          "kernels": "benchmarks.kernels_suite", "generate": "benchmarks.generate_suite"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(dest="suite", required=True, metavar="suite")
    for name, module_name in SUITES.items():
        suite = importlib.import_module(module_name)
        suite_parser = subcommands.add_parser(name, help=suite.__doc__.splitlines()[0], description=suite.__doc__,
                                              formatter_class=argparse.RawDescriptionHelpFormatter)
        suite.add_arguments(suite_parser)
        suite_parser.set_defaults(run=suite.run)
    args = parser.parse_args(argv)
    with user_errors_are_one_line():
        args.run(args)


if __name__ == "__main__":
    main()
