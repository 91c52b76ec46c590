"""Shared benchmark plumbing: median timings, the environment record, results files, tables.

GPU timings are Triton's `do_bench` medians (L2 flushed between runs); CPU timings are the
median of `reps` perf_counter runs, interleaved across the methods, after two warm-up calls.
Whole stacks (bench.py generate, train) each run in a `Worker` process of their own and take turns
(`alternating_rounds`), compared round by round (`paired_ratios`).
"""
import argparse
import datetime
import json
import multiprocessing
import os
import platform
import re
import statistics
import time
import traceback
from concurrent.futures import ProcessPoolExecutor

import torch

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def positive_int(text: str) -> int:
    """argparse type of the suites' counts (rows, tokens, ranks, repetitions, threads): 1 or more."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a whole number, at least 1")
    return int(text)


def median_ms(fns, device, reps):
    """{name: median wall time of fn() in ms} for a dict of callables.

    On CPU the callables take turns, rep after rep, so that load from other processes
    slows them all alike instead of whichever happened to run at the time.
    """
    if device == "cuda":
        import triton.testing
        return {name: triton.testing.do_bench(fn, return_mode="median") for name, fn in fns.items()}
    for fn in fns.values():
        fn(), fn()  # warm-up: allocator, thread pool, first-call dispatch
    samples = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(times) for name, times in samples.items()}


def alternating_rounds(timers: dict, rounds: int) -> dict:
    """{name: [result of each round]} for a dict of callables that each return their own seconds (or a
    measurement holding them). Every round calls each once, the order reversed every other round: this
    machine's speed drifts, at times by 2× within minutes, and timers taking turns meet the same
    conditions, where timers run one after the other would not. Compare two of them round by round
    (`paired_ratios`)."""
    names = list(timers)
    seconds = {name: [] for name in names}
    for round_ in range(rounds):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            seconds[name].append(timers[name]())
    return seconds


def paired_ratios(reference: list, other: list) -> list:
    """reference's seconds over other's, round by round: how many times faster `other` ran in each."""
    return [ref / oth for ref, oth in zip(reference, other)]


def device_name(device):
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model} ({torch.get_num_threads()} threads)"


def environment(device):
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    return {"device": device_name(device), "torch": torch.__version__, "triton": triton_version,
            "date": datetime.date.today().isoformat()}


def save_results(device, suite, variant, payload):
    """Merge payload into benchmarks/results/<device>-<date>.json under suites[suite][variant]."""
    env = environment(device)
    tag = "cpu" if device == "cpu" else re.sub(r"[^a-z0-9]+", "-", env["device"].lower()).strip("-")
    path = os.path.join(RESULTS_DIR, f"{tag}-{env['date']}.json")
    results = {}
    if os.path.exists(path):
        with open(path) as existing:
            results = json.load(existing)
    results.update(env)
    results.setdefault("suites", {}).setdefault(suite, {})[variant] = payload
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(path, "w") as out:
        json.dump(results, out, indent=1)
    return path


def format_row(cells, widths):
    return "  ".join(str(cell).rjust(width) if i else str(cell).ljust(width)
                     for i, (cell, width) in enumerate(zip(cells, widths)))


def synchronize(device):
    """Wait for the device's queued work, so that a wall-clock interval covers it."""
    if device == "cuda":
        torch.cuda.synchronize()


def reset_peak_memory(device):
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        reset_peak_rss()


def peak_memory_gib(device):
    """On CUDA torch's peak allocation; on CPU the process's peak RSS (weights, runtime and all)."""
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else peak_rss_gib()


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the peak resident set size
    except OSError:
        pass  # not Linux: the peak is then the process's lifetime peak


def peak_rss_gib():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 2**20
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def in_fresh_process(function, *args):
    """function(*args) in a new (spawned) process: its peak RSS is its own, no earlier run's memory counts."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as fresh_process:
        return fresh_process.submit(function, *args).result()


def _serve(connection, build, args):
    """The worker's side: build once, then answer (name, args) requests with (True, result) or (False, error)."""
    try:
        functions = build(*args)
    except Exception:
        connection.send((False, traceback.format_exc()))
        return
    connection.send((True, None))
    while (request := connection.recv()) is not None:
        name, call_args = request
        try:
            connection.send((True, functions[name](*call_args)))
        except Exception:
            connection.send((False, traceback.format_exc()))


class Worker:
    """build(*args) in a fresh (spawned) process, which returns {name: function}; `call(name, *args)` then runs
    that function there. Stacks that take turns on the machine this way each keep a process of their own:
    their own heap (one stack's freed or trimmed memory can't slow the other's next step) and their own peak."""

    def __init__(self, build, *args):
        context = multiprocessing.get_context("spawn")
        self.connection, worker_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(worker_end, build, args), daemon=True)
        self.process.start()
        self._answer(f"building {build.__name__}{args}")

    def call(self, name, *args):
        self.connection.send((name, args))
        return self._answer(f"{name}{args}")

    def _answer(self, what):
        try:
            ok, value = self.connection.recv()
        except EOFError:
            raise RuntimeError(f"benchmark worker died while {what} (exit code {self.process.exitcode})") from None
        if not ok:
            raise RuntimeError(f"benchmark worker failed while {what}:\n{value}")
        return value

    def close(self):
        if self.process.is_alive():
            self.connection.send(None)
        self.process.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
