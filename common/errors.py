"""User-facing errors.

Anything a user can get wrong (a path, a file, a flag, a record) raises `PhysloraError`
with one line that names the culprit and says what to do. The command-line entry points
print that line and exit with status 2 instead of showing a traceback from deep inside torch.
"""
import sys
from contextlib import contextmanager


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
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:
        if err.filename is None:  # not about a path the user gave: a real failure, keep its traceback
            raise
        print(f"error: {err.filename}: {err.strerror}; check the path, its parent folders and their permissions",
              file=sys.stderr)
        sys.exit(2)
