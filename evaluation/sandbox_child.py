"""Child side of the code sandbox: confine this process, then run untrusted code against tests.

Run by `evaluation/sandbox.py` as `python -I -S -B sandbox_child.py RESULT_FD` in a fresh
session and a fresh temporary directory, never imported. Stdlib only: isolated mode (-I -S)
sees neither the project nor site-packages. Before any untrusted code runs it

  1. reads the job (code, function name, test inputs, limits) from stdin as JSON;
  2. sets rlimits: address space (memory), CPU seconds, processes (fork bombs), file size, no core;
  3. when started as root, drops to the job's dedicated uid, so the OS itself refuses writes to
     the project and RLIMIT_NPROC is enforced (uid 0 is always exempt from it), keeping the
     stdlib importable through already-open descriptors;
  4. installs an audit hook (which cannot be removed afterwards) refusing sockets, any write,
     delete, rename, chmod ... of a path outside the temporary directory, and any read or
     listing outside it and the stdlib's folders (the problems' expected outputs lie somewhere
     on this machine, a run folder, a data file, and a program that finds them must not pass),
     starting other programs or C code through ctypes, which would act unseen by the hook, and
     symbolic links and chdir out, which could turn a path the hook checked into another one.

Results go to RESULT_FD as JSON lines -- `{"ready": true}` once confined (or `{"sandbox_error":
...}` if confining failed), one line per test, then `{"done": true}` -- so output the code prints
cannot be mistaken for a result, and tests finished before a timeout still count. A test's line
holds what the function returned, `{"test": i, "value": <canonical JSON text>}`, or why it gave
nothing usable, `{"test": i, "error": <type>, "detail": ...}`. Whether the value is right is
decided by the parent: the code runs in this process and could write to RESULT_FD itself, so this
process is never told the expected outputs and its word "passed" would be worth nothing.
"""
import builtins
import json
import os
import resource
import sys

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Audit events that modify the paths among their arguments (sys.audit event table).
_PATH_CHANGING_EVENTS = frozenset({
    "os.chflags", "os.chmod", "os.chown", "os.link", "os.lchflags", "os.mkdir", "os.remove",
    "os.removexattr", "os.rename", "os.rmdir", "os.setxattr", "os.symlink", "os.truncate",
    "os.utime", "shutil.chown",
})
_LISTING_EVENTS = frozenset({"os.listdir", "os.scandir"})
# Another program, or C functions called through ctypes, would act where this hook cannot see; so would
# _posixsubprocess.fork_exec (subprocess's and multiprocessing's way to start one), which raises no event.
_UNWATCHED_EVENTS = frozenset({"os.exec", "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen",
                               "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle"})
_UNWATCHED_MODULES = frozenset({"_posixsubprocess", "_ctypes"})
_DETAIL_CHARS = 300


def main() -> None:
    results = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    try:
        job = _confine()
    except BaseException as error:  # the evaluator must hear why, not see a crash
        _report(results, {"sandbox_error": f"{type(error).__name__}: {error}"})
        os._exit(1)
    # Only now may a failure be blamed on the code under test.
    _report(results, {"ready": True})
    harness_pid = os.getpid()
    try:
        solve = _load_function(job["code"], job["function"])
    except _SetupFailure as failure:
        _report(results, {"setup_error": failure.kind, "detail": failure.detail})
    else:
        for index, test in enumerate(job["tests"]):
            outcome = _run_one(solve, test)
            # A fork in the solution must not let the child run the remaining tests too.
            if os.getpid() != harness_pid:
                os._exit(0)
            _report(results, {"test": index, **outcome})
    _report(results, {"done": True})
    # Skip interpreter shutdown: atexit handlers and finalizers registered by the code.
    os._exit(0)


def _confine() -> dict:
    job = json.loads(sys.stdin.buffer.read())
    _stdin_from_devnull()
    _limit_resources(job)
    stdlib = [os.path.realpath(entry) for entry in sys.path]  # (-I -S: the stdlib alone)
    if job["uid"] is not None:
        _reach_imports_through_fds()
        os.setgroups([])
        os.setgid(job["uid"])
        os.setuid(job["uid"])
    sys.addaudithook(_refuse_escapes(os.path.realpath(os.getcwd()), stdlib))
    return job


def _stdin_from_devnull() -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def _limit_resources(job: dict) -> None:
    limits = {
        resource.RLIMIT_AS: job["memory_bytes"],
        resource.RLIMIT_CPU: job["cpu_seconds"],
        resource.RLIMIT_NPROC: job["nproc_limit"],
        resource.RLIMIT_FSIZE: job["file_bytes"],
        resource.RLIMIT_CORE: 0,
    }
    for which, value in limits.items():
        _soft, hard = resource.getrlimit(which)
        # A non-root process cannot raise its hard limit; a lower one is already stricter.
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))


def _reach_imports_through_fds() -> None:
    """Keep the stdlib importable after dropping root, even if it lives under /root (pyenv).

    Each import path is opened now, while still root, and replaced by /proc/self/fd/N: the
    kernel lets a process follow its own descriptors, and the lookup continues from the
    already-opened directory, so the unreadable ancestors are never checked again.
    """
    opened = {}
    for entry in sys.path:
        if os.path.exists(entry):
            opened[entry] = f"/proc/self/fd/{os.open(entry, os.O_RDONLY)}"

    def through_fd(path: str) -> str:
        for entry, fd_path in opened.items():
            if path == entry or path.startswith(entry + os.sep):
                return fd_path + path[len(entry):]
        return path

    sys.path[:] = [through_fd(entry) for entry in sys.path]
    # Packages imported at start-up (encodings, collections, ...) find submodules via __path__.
    for module in list(sys.modules.values()):
        if isinstance(getattr(module, "__path__", None), list):
            module.__path__[:] = [through_fd(path) for path in module.__path__]
    sys.path_importer_cache.clear()


def _refuse_escapes(root: str, stdlib: list):
    def inside(path, folders=(root,)) -> bool:
        if isinstance(path, int):  # an already-open file descriptor
            return True
        resolved = os.path.realpath(os.fsdecode(path))
        return resolved == os.devnull or any(resolved == folder or resolved.startswith(folder + os.sep)
                                             for folder in folders)

    readable = (root, *stdlib)

    def hook(event: str, args: tuple) -> None:
        if event.startswith("socket."):
            raise PermissionError(f"sandbox: network access refused ({event})")
        if event in _UNWATCHED_EVENTS or event == "import" and args[0] in _UNWATCHED_MODULES:
            raise PermissionError(f"sandbox: starting programs and calling C libraries refused ({event})")
        if event == "os.symlink":  # a link swapped between the hook's check and the open could point anywhere
            raise PermissionError("sandbox: symbolic links refused")
        if event == "os.chdir" and not inside(args[0]):  # (another thread's relative paths would follow it)
            raise PermissionError(f"sandbox: leaving the working directory refused: {args[0]!r}")
        if event == "open":
            path, _mode, flags = args
            if isinstance(flags, int) and flags & _WRITE_FLAGS and not inside(path):
                raise PermissionError(f"sandbox: writing outside the working directory refused: {path!r}")
            if path is not None and not inside(path, readable):
                raise PermissionError(f"sandbox: reading outside the working directory refused: {path!r}")
        elif event in _LISTING_EVENTS:
            if args[0] is not None and not inside(args[0], readable):
                raise PermissionError(f"sandbox: listing outside the working directory refused: {args[0]!r}")
        elif event in _PATH_CHANGING_EVENTS:
            for arg in args:
                if isinstance(arg, (str, bytes, os.PathLike)) and not inside(arg):
                    raise PermissionError(f"sandbox: {event} outside the working directory refused: {arg!r}")

    return hook


class _SetupFailure(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(kind)
        self.kind, self.detail = kind, detail


def _load_function(code: str, function_name: str):
    # Not "__main__": an `if __name__ == "__main__":` block would wait for input() and fail.
    namespace = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(compile(code, "<solution>", "exec"), namespace)
    except BaseException as error:  # SystemExit from the code is a failure too
        raise _SetupFailure(type(error).__name__, _short(str(error))) from None
    function = namespace.get(function_name)
    if not callable(function):
        raise _SetupFailure("MissingFunction", f"the code defines no function {function_name!r}")
    return function


def _run_one(solve, test: dict) -> dict:
    args = test["args"] if "args" in test else [test["input"]]
    try:
        got = solve(*args)
    except BaseException as error:  # report every failure, SystemExit included
        return {"error": type(error).__name__, "detail": _short(str(error))}
    try:
        # Canonical, as the parent writes the expected output: tuples equal lists, True is not 1.
        return {"value": json.dumps(got, sort_keys=True)}
    except Exception as error:  # not JSON-like: a set, an object, a cycle, ...
        return {"error": "WrongAnswer", "detail": _short(f"{type(got).__name__}: {error}")}


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def _report(results, message: dict) -> None:
    results.write(json.dumps(message) + "\n")


if __name__ == "__main__":
    main()
