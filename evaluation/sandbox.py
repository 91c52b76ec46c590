"""Run untrusted, model-generated Python against test cases without trusting it.

Layers, each covering what the previous one cannot:

* a separate process (`python -I -S -B`, stdlib only, an environment of just PATH and a run
  marker, so no tokens leak) in a fresh temporary working directory deleted afterwards;
* rlimits set in the child (see `sandbox_child.py`): address space, CPU seconds, file size,
  and RLIMIT_NPROC against fork bombs;
* when the evaluator runs as root -- exempt from RLIMIT_NPROC and allowed to write anywhere --
  the child drops to a dedicated random uid (systemd "DynamicUser" style): the kernel then
  enforces the process limit for that uid alone and refuses writes into the project;
* an audit hook in the child refusing sockets and Python-level writes outside the directory;
* a wall-clock timeout, after which -- and after every run -- everything the code started
  is SIGKILLed: its process group, every process in its session or carrying the run's marker
  in its environment, and, with a dedicated uid, every process of that uid (which catches
  children that called setsid() and cleared their environment to escape).

The verdict is given here, in the trusted parent, never in the child: the code runs in the
child's own interpreter and could write any line to the results pipe, so the child reports only
what the function returned, and the expected outputs are never sent to it. A forged report must
then hold the right answer, which is the task itself.

This is best effort, not a security boundary against a determined attacker: subprocesses
(`sh -c ...`) and ctypes bypass the audit hook, so they can open sockets and write wherever
the uid may (with a dedicated uid: world-writable places such as /tmp); as non-root, a child
that both calls setsid() and drops the marker from its environment escapes the cleanup.
Stronger isolation needs kernel namespaces (`unshare -n` for no network, a mount namespace
or container, bubblewrap/nsjail) or a cgroup with pids.max -- all root- or setup-dependent,
hence not used here. Linux only (/proc, rlimits, sessions).
"""
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from common.errors import PhysloraError

_CHILD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_child.py")
_FILE_BYTES = 16 * 1024 * 1024
# Beyond room for the right answers: wrong values and messages are small, more means garbage.
_MAX_RESULT_BYTES = 4 * 1024 * 1024
_DETAIL_CHARS = 300
_POLL_S = 0.05
# Dedicated uids come from above 2^31, a range no account scheme allocates (systemd's uid
# documentation keeps it free because some tools treat uids as signed; the kernel does not).
_UID_RANGE = (2**31 + 2**24, 2**32 - 2**24)
# Inherited by everything the code starts, so leftovers can be found after they left the session.
_MARKER_VARIABLE = "PHYSLORA_SANDBOX_RUN"


@dataclass(frozen=True)
class TestOutcome:
    passed: bool
    error: str | None  # None, "WrongAnswer", "Timeout", "Crashed", "MissingFunction", or the exception type
    detail: str = ""


@dataclass(frozen=True)
class SandboxResult:
    outcomes: tuple[TestOutcome, ...]
    timed_out: bool

    @property
    def passed(self) -> bool:
        return all(outcome.passed for outcome in self.outcomes)

    @property
    def n_passed(self) -> int:
        return sum(outcome.passed for outcome in self.outcomes)


def run_tests(
    code: str,
    function_name: str,
    tests: list[dict],
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_processes: int = 32,
) -> SandboxResult:
    """Define `function_name` by running `code`, then call it on every test.

    A test is `{"input": x, "output": y}` (called as f(x)) or `{"args": [...], "output": y}`
    (called as f(*args)); it passes when the result, as JSON, equals `output` -- tuples equal
    lists, but True is not 1 and 7.0 is not 7. `timeout_s` is wall-clock for the whole run,
    interpreter start-up (~20 ms) included; tests left unfinished count as "Timeout".
    """
    check_tests(tests)
    expected = [_canonical(test["output"]) for test in tests]
    workdir = tempfile.mkdtemp(prefix="physlora-sandbox-")
    uid = _dedicated_uid() if os.geteuid() == 0 else None
    if uid is not None:
        os.chown(workdir, uid, uid)
    job = {
        "code": code,
        "function": function_name,
        # Inputs only: code that could read the expected outputs could copy them into a report.
        "tests": [{key: test[key] for key in ("input", "args") if key in test} for test in tests],
        "uid": uid,
        "memory_bytes": memory_mb * 1024 * 1024,
        "cpu_seconds": math.ceil(timeout_s) + 1,
        # RLIMIT_NPROC counts every task of the real uid, so a shared uid needs headroom.
        "nproc_limit": max_processes if uid is not None else _count_tasks_of(os.getuid()) + max_processes,
        "file_bytes": _FILE_BYTES,
    }
    run_token = secrets.token_hex(16)
    read_fd, write_fd = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", _CHILD_SCRIPT, str(write_fd)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=workdir, env={"PATH": os.defpath, _MARKER_VARIABLE: run_token},
            pass_fds=(write_fd,), start_new_session=True,
        )
    except BaseException:
        os.close(read_fd)
        _remove_tree(workdir)
        raise
    finally:
        os.close(write_fd)
    try:
        _send_job(child, job)
        # The child sends back whole returned values, so a right answer of any size must fit.
        max_bytes = _MAX_RESULT_BYTES + 2 * sum(len(text) for text in expected)
        messages, timed_out = _collect(read_fd, child, time.monotonic() + timeout_s, max_bytes)
    finally:
        _kill_everything(child, uid, f"{_MARKER_VARIABLE}={run_token}".encode())
        child.wait()
        os.close(read_fd)
        _remove_tree(workdir)
    _check_started(messages, timed_out, child.returncode)
    return SandboxResult(_outcomes(messages, expected, timed_out, child.returncode), timed_out)


def check_tests(tests: list[dict]) -> None:
    """Refuse test cases that could not decide anything: none, or ones without an input and an output."""
    if not isinstance(tests, list) or not tests:
        raise PhysloraError(f"answer.tests: {tests!r:.40}; a code task needs a list of at least one test case")
    for index, test in enumerate(tests):
        if not (isinstance(test, dict) and "output" in test and ("input" in test or "args" in test)):
            raise PhysloraError(
                f"answer.tests[{index}]: expected {{'input': ..., 'output': ...}} or "
                f"{{'args': [...], 'output': ...}}, got {test!r:.80}; fix the record"
            )


def _dedicated_uid() -> int | None:
    """A random unused-looking uid, if this user namespace can switch to it."""
    uid = _UID_RANGE[0] + secrets.randbelow(_UID_RANGE[1] - _UID_RANGE[0])
    with open("/proc/self/uid_map") as uid_map:
        for line in uid_map:
            inside, _outside, count = map(int, line.split())
            if inside <= uid < inside + count:
                return uid
    return None


def _send_job(child: subprocess.Popen, job: dict) -> None:
    try:
        child.stdin.write(json.dumps(job).encode())
        child.stdin.close()
    except BrokenPipeError:  # the child died before reading; _check_started says so
        pass


def _collect(read_fd: int, child: subprocess.Popen, deadline: float, max_bytes: int) -> tuple[list[dict], bool]:
    """Read result lines until "done", end of pipe, the child's death, or the deadline.

    "done" counts only once the child has exited: the code can write a "done" line of its own
    while the harness still has tests to run.
    """
    received = b""
    with selectors.DefaultSelector() as selector:
        selector.register(read_fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _parse_lines(received), True
            if selector.select(min(remaining, _POLL_S)):
                chunk = os.read(read_fd, 65536)
                received += chunk
                messages = _parse_lines(received)
                finished = any(m.get("done") for m in messages) and child.poll() is not None
                if not chunk or len(received) > max_bytes or finished:
                    return messages, False
            # Processes the code forked may hold the pipe open long after the child has died.
            elif child.poll() is not None:
                return _parse_lines(received), False


def _parse_lines(received: bytes) -> list[dict]:
    messages = []
    for line in received.split(b"\n"):
        try:
            message = json.loads(line)
        except ValueError:  # a partial last line, or bytes the code wrote to the pipe
            continue
        if isinstance(message, dict):
            messages.append(message)
    return messages


def _check_started(messages: list[dict], timed_out: bool, returncode: int) -> None:
    """A child that failed before running the code says nothing about the code: never score it."""
    if any(message.get("ready") for message in messages) or timed_out:
        return
    reason = next((m["sandbox_error"] for m in messages if "sandbox_error" in m), None)
    raise PhysloraError(
        f"sandbox: the child could not be confined ({reason or _describe_exit(returncode)}); "
        "code tasks cannot be scored on this machine -- run as a regular user or fix the limits"
    )


def _outcomes(messages: list[dict], expected: list[str], timed_out: bool, returncode: int) -> tuple[TestOutcome, ...]:
    """Judge the child's reports against the expected outputs (canonical JSON texts) it never saw."""
    n_tests = len(expected)
    by_index = {}
    for message in messages:
        detail = str(message.get("detail", ""))
        if "setup_error" in message:
            return (TestOutcome(False, str(message["setup_error"]), detail),) * n_tests
        index = message.get("test")
        # First report wins: a forked copy of the harness may repeat an index.
        if not isinstance(index, int) or index not in range(n_tests) or index in by_index:
            continue
        value, error = message.get("value"), message.get("error")
        if isinstance(value, str):
            by_index[index] = (TestOutcome(True, None) if value == expected[index]
                               else TestOutcome(False, "WrongAnswer", _short(value)))
        elif isinstance(error, str):
            by_index[index] = TestOutcome(False, error, detail)
        # Anything else (e.g. a line claiming "passed") is not a report the child writes: ignored.
    if timed_out:
        missing = TestOutcome(False, "Timeout", "wall-clock limit reached")
    else:
        missing = TestOutcome(False, "Crashed", _describe_exit(returncode))
    return tuple(by_index.get(index, missing) for index in range(n_tests))


def _canonical(value) -> str:
    """JSON text, as the child writes the returned value: tuples equal lists, but True is not 1 and 7.0 is not 7.
    (sandbox_child.py spells it out again: it runs isolated, `python -I -S`, and cannot import this module.)"""
    return json.dumps(value, sort_keys=True)


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        # SIGKILL/SIGXCPU here usually mean the CPU or memory limit.
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode} before reporting"


def _kill_everything(child: subprocess.Popen, uid: int | None, marker: bytes) -> None:
    """SIGKILL the child's process group, session, marked and (dedicated-)uid processes until
    nothing is left; repeated because a fork bomb may fork while it is being killed."""
    for _ in range(200):
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        survivors = [
            pid for pid, session, owner in _live_processes()
            if session == child.pid or (uid is not None and owner == uid) or _has_marker(pid, marker)
        ]
        if not survivors:
            return
        for pid in survivors:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)


def _live_processes():
    """(pid, session id, owner uid) of every process that is not already a zombie."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat_file:
                stat = stat_file.read()
            owner = os.stat(f"/proc/{entry}").st_uid
        except OSError:  # exited while we looked
            continue
        # Fields after "(comm)", which may itself contain spaces and parentheses.
        state, _ppid, _pgrp, session = stat[stat.rindex(")") + 2:].split()[:4]
        if state not in ("Z", "X"):
            yield int(entry), int(session), owner


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return marker in environ.read().split(b"\0")
    except OSError:  # exited, or another user's process (which the code could not have started)
        return False


def _count_tasks_of(uid: int) -> int:
    """Threads included: RLIMIT_NPROC counts tasks, not processes."""
    tasks = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    tasks += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return tasks


def _remove_tree(path: str) -> None:
    # The code may have made files read-only; make them writable again rather than give up.
    def make_writable_and_retry(function, failed_path, _exc_info):
        os.chmod(os.path.dirname(failed_path), 0o700)
        os.chmod(failed_path, 0o700)
        function(failed_path)

    shutil.rmtree(path, onerror=make_writable_and_retry)
