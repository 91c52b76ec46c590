"""Run folders: where a training run writes, how it refuses to destroy another, how it is shared.

A run folder holds config.json, metrics.jsonl, loss.svg, checkpoints/step-N/ and, once finished,
the adapter (adapter_config.json + adapter_model.safetensors). Writing into a folder that already
holds something is refused unless the run continues it (--resume) or replaces it (--overwrite):
a five-step dry run must never silently replace a finished training run.
"""
import argparse
import datetime
import itertools
import json
import os
import shutil
import time

from common import distributed
from common.errors import PhysloraError

RUNS_ROOT = "runs"
# What --overwrite removes: the files a training run writes (and their .partial, left by a crash mid-write).
RUN_FILES = ("config.json", "metrics.jsonl", "loss.svg", "adapter_config.json", "adapter_model.safetensors",
             "checkpoints")
PARTIAL = ".partial"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def new_run_dir(root: str = RUNS_ROOT, prefix: str = "") -> str:
    """A new, empty runs/<prefix><YYYYmmdd-HHMMSS>, with -2, -3, … if that second is taken. Made here: two runs
    started in the same second (a sweep) must not both pick a free name and then share it."""
    stamp = prefix + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(root, exist_ok=True)
    for n in itertools.count(1):
        path = os.path.join(root, stamp if n == 1 else f"{stamp}-{n}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue


def check_run_dir(out: str, overwrite: bool, has_overwrite_flag: bool = True) -> None:
    """Check `out` for a new run: a non-empty one is refused unless `overwrite`, and `overwrite` replaces a
    training run only: a folder that holds anything else (an evaluation, a user's notes) is refused, since a
    new run beside those files would be neither. Nothing is removed yet: the caller creates the folder, or
    clears the old run from it (`start_run_dir`), when it writes its first file, so a run that fails before
    that (bad data, a bad flag) leaves the old run as it was, or no folder at all."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise PhysloraError(f"--out {out}: is a file; pass a folder")
    existing = sorted(os.listdir(out)) if os.path.isdir(out) else []
    if existing and not overwrite:
        raise PhysloraError(f"--out {out}: not empty ({_some(existing)}); continue that run with --resume {out}"
                            f"{', replace it with --overwrite,' if has_overwrite_flag else ''} or choose another --out")
    foreign = [name for name in existing if not _is_run_file(name)]
    if foreign:
        raise PhysloraError(f"--out {out} --overwrite: replaces a training run only, and {out} also holds "
                            f"{_some(foreign)}, which a training run does not write; move those away or choose "
                            "another --out")


def write_atomically(path: str, write) -> None:
    """`write(temporary_path)`, then rename it to `path`: a crash mid-write leaves the old file, or none."""
    partial = path + PARTIAL
    write(partial)
    os.replace(partial, path)


def _is_run_file(name: str) -> bool:
    return (name[:-len(PARTIAL)] if name.endswith(PARTIAL) else name) in RUN_FILES


def _some(names: list) -> str:
    return ", ".join(names[:3]) + (", …" if len(names) > 3 else "")


def start_run_dir(out: str) -> None:
    """Make `out` ready for a new run's first file: created, and an older run's files removed (--overwrite)."""
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        path = os.path.join(out, name)
        if _is_run_file(name):
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def open_run_dir(args: argparse.Namespace, per_invocation: tuple, root: str = RUNS_ROOT, prefix: str = "",
                 data: dict = None) -> str:
    """A command's run folder: --out, or a new root/<prefix><timestamp>. A new run (not --resume) creates it,
    refusing a non-empty one, and writes config.json with every setting but the `per_invocation` flags, and
    `data` ({name: {"sha256": ...}}) to check the data against when it resumes (`check_same_data`)."""
    out = args.out or new_run_dir(root, prefix)
    if not args.resume:
        check_run_dir(out, overwrite=False, has_overwrite_flag=False)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump({"settings": {k: v for k, v in vars(args).items() if k not in per_invocation},
                       **({"data": data} if data else {})}, f, indent=2)
    elif data:
        check_same_data(out, data)
    return out


def check_same_data(run_dir: str, data: dict) -> None:
    """Refuse to resume a run on other data than it started with: it would end as no uninterrupted run does."""
    with open(os.path.join(run_dir, "config.json")) as f:
        started_with = json.load(f).get("data", {})
    for name, now in data.items():
        if name in started_with and started_with[name]["sha256"] != now["sha256"]:
            where = f" ({now['path']})" if "path" in now else ""
            raise PhysloraError(f"--resume {run_dir}: the {name} data{where} changed since the run started (its "
                                "sha256 is in config.json); restore it, or start a new run")


def resumed_settings(parser: argparse.ArgumentParser, argv, per_invocation: tuple, command: str) -> argparse.Namespace:
    """The settings saved in RUN/config.json for `--resume RUN` (in argv), with this invocation's `per_invocation`
    flags.

    A flag given on the command line that differs from the saved setting is refused, even when it gives the
    flag's default: a resumed run must produce what the uninterrupted run would have.
    """
    args = parser.parse_args(argv)
    if args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
        raise PhysloraError(f"--resume {args.resume} with --out {args.out}: a resumed run writes into its own "
                            "folder; drop --out")
    path = os.path.join(args.resume, "config.json")
    if not os.path.isfile(path):
        raise PhysloraError(f"--resume {args.resume}: no config.json there; pass a folder written by {command}")
    try:
        with open(path) as f:
            saved = json.load(f)["settings"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise PhysloraError(f"--resume {args.resume}: {path} is not a run's config.json ({type(err).__name__}: "
                            f"{err}); was it edited by hand?") from None
    foreign = sorted(set(saved) - set(vars(args)))
    if foreign:
        raise PhysloraError(f"--resume {args.resume}: its settings ({', '.join(foreign[:4])}"
                            f"{', …' if len(foreign) > 4 else ''}) are not {command}'s: the folder of another "
                            f"command? Pass a folder written by {command}")
    # argparse fills in a default only where the namespace lacks the attribute: what stays unset was not given.
    unset = object()
    given = vars(parser.parse_args(argv, namespace=argparse.Namespace(**{name: unset for name in vars(args)})))
    changed = [name for name, value in vars(args).items() if name not in per_invocation and given[name] is not unset
               and value != saved.get(name, parser.get_default(name))]
    if changed:
        flags = ", ".join("--" + name.replace("_", "-") for name in changed)
        raise PhysloraError(f"--resume {args.resume}: the run's settings come from {path}; drop {flags}")
    # A setting newer than the run takes its default, which is how the run was made.
    defaults = {name: parser.get_default(name) for name in vars(args)}
    resumed = argparse.Namespace(**{**defaults, **saved, **{name: getattr(args, name) for name in per_invocation}})
    resumed.out = args.resume
    return resumed


def read_timings(path: str) -> dict:
    """stage -> seconds, as `run_stage` recorded them in `path` (empty before the first stage)."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def jsonl_entries(lines):
    """(record, line) for each line of a JSONL file, up to a half-written one (a run stopped while appending it)."""
    for line in lines:
        try:
            yield json.loads(line), line
        except ValueError:
            return


def read_jsonl(path: str) -> list:
    """The records of a JSONL file that `append_jsonl` wrote, up to a last line a stopped run left half-written."""
    with open(path, "rb") as f:
        return [record for record, _ in jsonl_entries(f)]


def append_jsonl(path: str, record: dict) -> None:
    """One JSON line more in `path` (metrics.jsonl): a crash loses at most the line being written."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def run_stage(name: str, done: bool, action, timings_path: str) -> None:
    """Run one stage unless it already finished (resume), and add its wall time to `timings_path`
    (rank 0's, under torchrun)."""
    if done:
        print(f"== {name}: already done", flush=True)
        return
    print(f"== {name}", flush=True)
    started = time.perf_counter()
    action()
    if distributed.rank() > 0:
        return
    timings = read_timings(timings_path)
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
    with open(timings_path, "w") as f:
        json.dump(timings, f)


def push_to_hub(run_dir: str, repo_id: str) -> str:
    """Upload the run's adapter to the hub (token: $HF_TOKEN, or `hf auth login`); returns its URL."""
    import huggingface_hub

    try:
        api = huggingface_hub.HfApi()
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=run_dir, allow_patterns=[*ADAPTER_FILES, "loss.svg"],
                          commit_message="Upload LoRA adapter trained with physlora")
    except Exception as err:  # offline, no token, no rights: requests, hub and OS errors alike
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PhysloraError(f"--push-to-hub {repo_id}: upload failed ({reason}); the run is saved in {run_dir}; "
                            f"upload it later with: hf upload {repo_id} {run_dir} --include 'adapter_*'") from None
    return f"https://huggingface.co/{repo_id}"
