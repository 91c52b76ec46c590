"""The code sandbox: right code passes, wrong code fails, and hostile code is contained.

Every hostile program here is bounded on its own (a fork loop stops at 200, sleeps end), so a
broken sandbox fails these tests without hurting the machine they run on.
"""
import json
import os
import pathlib
import shutil
import tempfile
import textwrap
import time
import uuid

import pytest

from common.errors import PhysloraError
from evaluation.sandbox import run_tests

SQUARE_TESTS = [{"input": 2, "output": 4}, {"input": -3, "output": 9}]


def _run(code: str, tests=SQUARE_TESTS, **limits):
    return run_tests(textwrap.dedent(code), "solve", tests, **{"timeout_s": 2.0, **limits})


def _live_processes_with(cmdline_part: bytes) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cmdline_part in cmdline and state != "Z":
            found.append(int(entry))
    return found


def test_correct_code_passes_every_test():
    result = _run("def solve(x):\n    return x * x\n")
    assert result.passed and result.n_passed == 2
    assert [outcome.error for outcome in result.outcomes] == [None, None]


def test_args_are_spread_over_the_parameters():
    result = _run("def solve(a, b):\n    return a - b\n", tests=[{"args": [5, 3], "output": 2}])
    assert result.passed


def test_wrong_code_fails_with_the_value_it_returned_as_json():
    result = _run("def solve(x):\n    return x + 2\n")
    assert not result.passed
    assert [(o.passed, o.error, o.detail) for o in result.outcomes] == [(True, None, ""), (False, "WrongAnswer", "-1")]


def test_exception_type_is_recorded_per_test():
    result = _run("def solve(x):\n    return 10 // (x - 2)\n")
    assert [o.error for o in result.outcomes] == ["ZeroDivisionError", "WrongAnswer"]


def test_syntax_error_fails_every_test():
    result = _run("def solve(x) return x")
    assert [o.error for o in result.outcomes] == ["SyntaxError", "SyntaxError"]


def test_missing_function_fails_every_test():
    result = _run("def square(x):\n    return x * x\n")
    assert {o.error for o in result.outcomes} == {"MissingFunction"}


def test_exit_calls_are_failures_not_crashes_of_the_evaluator():
    assert _run("import sys\ndef solve(x):\n    sys.exit(0)\n").outcomes[0].error == "SystemExit"
    assert _run("import os\ndef solve(x):\n    os._exit(0)\n").outcomes[0].error == "Crashed"


def test_results_compare_as_json_strictly():
    tests = [{"input": 1, "output": [1, 2]}, {"input": 2, "output": True}, {"input": 3, "output": 7}]
    code = "def solve(x):\n    return {1: (1, 2), 2: 1, 3: 7.0}[x]\n"
    assert [o.passed for o in _run(code, tests=tests).outcomes] == [True, False, False]


def test_main_guard_of_the_solution_does_not_run():
    code = "def solve(x):\n    return x * x\nif __name__ == '__main__':\n    print(solve(int(input())))\n"
    assert _run(code).passed


def test_stdlib_modules_import_inside_the_sandbox():
    code = """
        def solve(x):
            import collections, decimal, fractions, itertools, json, re
            return int(fractions.Fraction(x * x, 1))
    """
    assert _run(code).passed


def test_printed_text_cannot_forge_a_result():
    code = 'def solve(x):\n    print(\'{"test": 1, "passed": true, "error": null}\')\n    return 0\n'
    assert [o.error for o in _run(code).outcomes] == ["WrongAnswer", "WrongAnswer"]


# Lines the code itself writes to the results pipe (the child's argv[1]), followed by a forged "done".
FORGED_REPORTS = {
    "claiming_a_pass": '{"test": %d, "passed": true, "error": null, "detail": ""}',
    "holding_a_wrong_value": '{"test": %d, "value": "-1"}',
}
FORGE = (
    "import os, sys\n"
    "def forge(report):\n"
    "    lines = [report % test for test in range(2)] + ['{\"done\": true}']\n"
    "    os.write(int(sys.argv[1]), ('\\n'.join(lines) + '\\n').encode())\n"
)


@pytest.mark.parametrize("report", FORGED_REPORTS.values(), ids=FORGED_REPORTS)
@pytest.mark.parametrize("when", ["at_import", "inside_solve"])
def test_reports_forged_on_the_results_pipe_cannot_pass_wrong_code(report, when):
    if when == "at_import":
        code = FORGE + f"forge({report!r})\ndef solve(x):\n    return 0\n"
    else:
        code = FORGE + f"def solve(x):\n    forge({report!r})\n    return 0\n"
    assert [(o.passed, o.error) for o in _run(code).outcomes] == [(False, "WrongAnswer")] * 2


def test_the_expected_outputs_are_nowhere_the_code_can_look():
    # Where they would be if the child had them: its callers' variables, objects the gc tracks, stdin.
    code = """
        import gc, sys
        def solve(x):
            frame, places = sys._getframe(1), []
            while frame:
                places += frame.f_locals.values()
                frame = frame.f_back
            for place in places + gc.get_objects():
                for item in place if isinstance(place, list) else [place]:
                    if isinstance(item, dict) and "output" in item:
                        return item["output"]
            return sys.stdin.read()
    """
    assert [o.error for o in _run(code).outcomes] == ["WrongAnswer", "WrongAnswer"]


def test_infinite_loop_is_killed_at_the_timeout():
    start = time.monotonic()
    result = _run("def solve(x):\n    while True:\n        pass\n", timeout_s=1.0)
    assert time.monotonic() - start < 2.0
    assert result.timed_out
    assert [o.error for o in result.outcomes] == ["Timeout", "Timeout"]


def test_tests_finished_before_the_timeout_keep_their_result():
    code = "def solve(x):\n    while x < 0:\n        pass\n    return x * x\n"
    result = _run(code, timeout_s=1.0)
    assert [o.error for o in result.outcomes] == [None, "Timeout"]


def test_huge_allocation_fails_with_memory_error():
    result = _run("def solve(x):\n    block = bytearray(4 * 1024 ** 3)\n    return x * x\n", memory_mb=256)
    assert [o.error for o in result.outcomes] == ["MemoryError", "MemoryError"]


def test_write_outside_the_working_directory_is_refused():
    # The system temp folder is world-writable, so only the sandbox can stop this write.
    target = os.path.join(tempfile.gettempdir(), f"physlora-escape-{uuid.uuid4().hex}")
    result = _run(f"def solve(x):\n    open({target!r}, 'w').write('escaped')\n    return x * x\n")
    assert not os.path.exists(target)
    assert result.outcomes[0].error == "PermissionError"


def test_deleting_outside_the_working_directory_is_refused(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    result = _run(f"import os\ndef solve(x):\n    os.remove({str(victim)!r})\n    return x * x\n")
    assert victim.read_text() == "precious"
    assert result.outcomes[0].error == "PermissionError"


def test_code_works_in_a_fresh_directory_that_is_removed_afterwards():
    code = """
        import os
        def solve(x):
            assert os.listdir('.') == []
            with open('scratch.txt', 'w') as f:
                f.write('fine here')
            return os.getcwd()
    """
    outcome = _run(code, tests=[{"input": 0, "output": "never equal"}]).outcomes[0]
    assert outcome.error == "WrongAnswer"  # the detail is the directory it ran in
    workdir = json.loads(outcome.detail)
    assert os.path.basename(workdir).startswith("physlora-sandbox-")
    assert not os.path.exists(workdir)


def test_reading_or_listing_outside_the_working_directory_is_refused():
    # Where an evaluation keeps its problems: a file any user may read (as run folders are), so
    # that under root, where the code runs as a uid of its own, only the sandbox can refuse it.
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="physlora-problems-"))
    tmp_path.chmod(0o755)
    answers = tmp_path / "problems.jsonl"
    answers.write_text('{"input": 2, "output": 4}\n')
    for peek in (f"open({str(answers)!r}).read()", f"__import__('os').listdir({str(tmp_path)!r})"):
        assert _run(f"def solve(x):\n    {peek}\n    return x * x\n").outcomes[0].error == "PermissionError", peek
    found = _run(f"def solve(x):\n    return __import__('glob').glob({str(tmp_path / '*')!r})\n").outcomes[0]
    assert (found.error, found.detail) == ("WrongAnswer", "[]")  # glob swallows the refusal: it finds nothing
    shutil.rmtree(tmp_path)


@pytest.mark.parametrize("program", ["__import__('subprocess').run(['cat', '/etc/hostname'])",
                                     "__import__('os').system('true')",
                                     "__import__('_posixsubprocess')",  # its fork_exec raises no audit event
                                     "__import__('ctypes').CDLL(None)"])
def test_other_programs_and_c_libraries_which_the_sandbox_cannot_watch_are_refused(program):
    outcome = _run(f"def solve(x):\n    {program}\n    return x * x\n").outcomes[0]
    assert outcome.error in ("PermissionError", "ImportError"), outcome  # ctypes's own import calls dlopen


@pytest.mark.parametrize("move", ["os.symlink('.', 'link')", "os.chdir('/')"])
def test_links_and_leaving_the_folder_which_could_redirect_a_checked_path_are_refused(move):
    # A link swapped, or a chdir made by another thread, between the hook's check and the open would read
    # elsewhere than the path the hook allowed.
    assert _run(f"import os\ndef solve(x):\n    {move}\n    return x * x\n").outcomes[0].error == "PermissionError"


def test_network_is_refused():
    code = "import socket\ndef solve(x):\n    socket.socket()\n    return x * x\n"
    assert _run(code).outcomes[0].error == "PermissionError"


def test_fork_bomb_is_stopped_by_the_process_limit_and_cleaned_up():
    code = """
        import os, time
        def solve(limit):
            forks = 0
            for _ in range(200):
                try:
                    pid = os.fork()
                except OSError:
                    break
                if pid == 0:
                    time.sleep(20)
                    os._exit(0)
                forks += 1
            return forks < limit
    """
    result = _run(code, tests=[{"input": 16, "output": True}], max_processes=16)
    assert result.passed
    assert _live_processes_with(b"sandbox_child.py") == []


@pytest.mark.parametrize("new_session", [False, True])
def test_child_processes_left_behind_are_killed(new_session):
    code = f"""
        import os, time
        def solve(x):
            sleeper = os.fork()
            if sleeper == 0:
                if {new_session}:
                    os.setsid()
                time.sleep(30)
                os._exit(0)
            return sleeper
    """
    outcome = _run(code, tests=[{"input": 1, "output": -1}]).outcomes[0]
    assert outcome.error == "WrongAnswer"  # its detail: the sleeper's pid
    assert int(outcome.detail) not in _live_processes_with(b"sandbox_child.py")


def test_a_test_case_without_output_is_refused():
    with pytest.raises(PhysloraError, match=r"answer.tests\[0\]"):
        run_tests("def solve(x): return x", "solve", [{"input": 1}])


def test_no_test_cases_is_refused():
    with pytest.raises(PhysloraError, match="at least one test"):
        run_tests("def solve(x): return x", "solve", [])


def test_a_child_that_cannot_confine_itself_stops_the_evaluation(tmp_path, monkeypatch):
    # Stand-in for a machine where, say, dropping privileges is not permitted.
    fake_child = tmp_path / "child.py"
    fake_child.write_text(
        "import os, sys\n"
        "os.write(int(sys.argv[1]), b'{\"sandbox_error\": \"PermissionError: setuid refused\"}\\n')\n"
        "os._exit(1)\n"
    )
    monkeypatch.setattr("evaluation.sandbox._CHILD_SCRIPT", str(fake_child))
    with pytest.raises(PhysloraError, match="could not be confined.*setuid refused"):
        _run("def solve(x):\n    return x * x\n")
