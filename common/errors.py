"""User-facing errors.

Anything a user can get wrong (a path, a file, a flag, a record) raises `PhysloraError`
with one line that names the culprit and says what to do. The command-line entry points
print that line and exit with status 2 instead of showing a traceback from deep inside torch;
under torchrun, once, not once per process.
"""
import os
import sys
import time
from contextlib import contextmanager

# Under torchrun every process usually meets the same bad input. Rank 0 says it, and the launcher stops
# the other processes (SIGTERM) within its 0.1 s polling interval of a process failing; a process that is
# still alive after this wait met an error of its own (its GPU, say), which it then says with its rank.
OTHER_RANKS_WAIT_S = 2.0


class PhysloraError(Exception):
    """An error caused by the user's input; its message is the whole story."""


class Interrupted(PhysloraError):
    """Ctrl-C, told as how to continue. A command that runs another (experiment.py runs train.py) says its own."""


@contextmanager
def interrupted_means(how_to_continue: str):
    """Ctrl-C inside the block ends the command with `interrupted; continue with: <how_to_continue>`."""
    try:
        yield
    except (KeyboardInterrupt, Interrupted):
        raise Interrupted(f"interrupted; continue with: {how_to_continue}") from None


@contextmanager
def user_errors_are_one_line():
    """Wrap a CLI's main(): a PhysloraError becomes `error: <message>` and exit code 2, and so does a
    file-system error on a named path (an --out under a file, a folder without write permission, a full disk)."""
    try:
        yield
    except PhysloraError as err:
        _say(str(err))
        sys.exit(2)
    except KeyboardInterrupt:  # where no command says how to continue: nothing half-done to continue
        _say("interrupted")
        sys.exit(130)
    except OSError as err:
        if err.filename is None:  # not about a path the user gave: a real failure, keep its traceback
            raise
        _say(f"{err.filename}: {err.strerror}; check the path, its parent folders and their permissions")
        sys.exit(2)


def _say(message: str) -> None:
    rank = int(os.environ.get("RANK", "0"))  # set by torchrun; read here since the process group may not exist yet
    if rank > 0:
        time.sleep(OTHER_RANKS_WAIT_S)
        message = f"(rank {rank}) {message}"
    print(f"error: {message}", file=sys.stderr)
