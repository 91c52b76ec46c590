"""report.md: the side-by-side tables of an evaluation, in the style of the reference results.

    | metric (test_unseen, physics_scenario) | base | lora | McNemar p |
    | failure-mode accuracy (failing cases)  | 10.5% [2.9, 31.4] (2/19) | 78.9% [56.7, 91.5] (15/19) | 0.0005 |

Every rate carries its Wilson 95% interval and counts; p compares each system with the first
on the same examples (exact McNemar).
"""
from evaluation.parsing import FAILURE_MODES
from evaluation.metrics import UNPARSED
from evaluation.stats import format_rate

SCENARIO_ROWS = (("mode_accuracy_on_failing", "failure-mode accuracy (failing cases)"),
                 ("binary_accuracy", "binary accuracy (fails or not)"),
                 ("accuracy", "accuracy (all eight classes)"),
                 ("format_compliance", "format compliance"))


def _rate(entry: dict) -> str:
    return format_rate(entry["k"], entry["n"])


def _p_value(comparison: dict) -> str:
    return f"{comparison['p_value']:.2g}" if comparison else ""  # no test for this row


def metric_table(split: str, task: str, systems: list, metrics: dict, comparisons: dict) -> list:
    """Markdown lines of one split × task table: a row per metric, a column per system."""
    first = metrics[systems[0]][split][task]
    paired = [comparisons.get(name, {}).get(split, {}).get(task, {}) for name in systems[1:]]
    header = [f"{split} · {task}", *systems, *(f"McNemar p ({systems[0]} vs {name})" for name in systems[1:])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def row(label, values, p_values=None):
        lines.append("| " + " | ".join([label, *values, *(p_values or [""] * len(paired))]) + " |")

    if task == "physics_scenario":
        for key, label in SCENARIO_ROWS:
            row(label, [_rate(metrics[s][split][task][key]) for s in systems],
                [_p_value(c.get(key)) for c in paired])
        for mode in first["per_mode_accuracy"]:
            row(f"· {mode}", [_rate(metrics[s][split][task]["per_mode_accuracy"][mode]) for s in systems])
    else:
        row("accuracy", [_rate(metrics[s][split][task]["accuracy"]) for s in systems],
            [_p_value(c.get("accuracy")) for c in paired])
        if "rouge_l" in first:
            row("ROUGE-L F1", [f"{metrics[s][split][task]['rouge_l']:.3f}" for s in systems])
        if "tests_passed" in first:
            row("test cases passed", [_rate(metrics[s][split][task]["tests_passed"]) for s in systems])
        for k in first.get("pass_at", {}):
            row(f"pass@{k}", [_mean(metrics[s][split][task]["pass_at"][k], percent=True) for s in systems])
        if "judge" in first:
            row("judge score (1-10)", [_mean(metrics[s][split][task]["judge"]) for s in systems])
    row("outputs cut off at the token budget", [str(metrics[s][split][task]["hit_limit"]) for s in systems])
    return lines


def _mean(entry: dict, percent: bool = False) -> str:
    """A mean_interval entry: `41.2% [33.0, 49.8] (n=60)`, or `6.50 [5.1, 7.9] (n=12)`."""
    if entry["mean"] is None:
        return "no scores"
    scale, digits = (100, 1) if percent else (1, 2)
    low, high = (scale * bound for bound in entry["ci95"])
    return f"{scale * entry['mean']:.{digits}f}{'%' if percent else ''} [{low:.1f}, {high:.1f}] (n={entry['n']})"


def confusion_table(confusion: dict) -> list:
    """Rows: the true class; columns: the predicted class (unparsed = no valid answer)."""
    columns = list(FAILURE_MODES) + [UNPARSED]
    lines = ["| true \\ predicted | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for true in FAILURE_MODES:
        lines.append(f"| {true} | " + " | ".join(str(confusion[true][pred]) for pred in columns) + " |")
    return lines


def judgement(score: dict) -> str:
    """'right' or 'wrong', and for a scenario the class its answer was read as (a check program's is
    the calculator's verdict, which the output itself does not show)."""
    verdict = "right" if score["correct"] else "wrong"
    return f"{verdict}, read as {score['pred_class']}" if "pred_class" in score else verdict


def render(title: str, systems: dict, metrics: dict, comparisons: dict, samples: list, settings: dict,
           preamble: tuple = ()) -> str:
    """The whole report.md: preamble lines, identities, a table per split × task, confusion matrices, samples."""
    names = list(systems)
    lines = [f"# {title}", "", *preamble, "| system | model | adapter |", "|---|---|---|"]
    lines += [f"| {name} | {s['model']} | {s['adapter'] or '—'} |" for name, s in systems.items()]
    for split in metrics[names[0]]:
        for task in metrics[names[0]][split]:
            lines += ["", *metric_table(split, task, names, metrics, comparisons)]
            if task == "physics_scenario":
                for name in names:
                    lines += ["", f"Confusion matrix, {name}, {split} (rows: truth, columns: prediction):", "",
                              *confusion_table(metrics[name][split][task]["confusion"])]
    if samples:
        lines += ["", "## Sample answers", ""]
        for sample in samples:
            lines += [f"**{sample['id']}** ({sample['split']}, {sample['task']}): {sample['prompt']}", "",
                      f"*reference:* {sample['target']}", ""]
            lines += [f"*{name}* ({judgement(sample[name])}): {sample[name]['output']}" for name in names] + [""]
    lines += ["## Settings", "", *(f"- `--{name.replace('_', '-')}` {value}" for name, value in settings.items()), ""]
    return "\n".join(lines)
