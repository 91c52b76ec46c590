"""User-facing errors.

Anything a user can get wrong (a path, a file, a flag, a record) raises `PhysloraError`
with one line that names the culprit and says what to do. The command-line entry points
print that line and exit with status 2 instead of showing a traceback from deep inside torch.
"""
import sys
from contextlib import contextmanager


class PhysloraError(Exception):
    """An error caused by the user's input; its message is the whole story."""


@contextmanager
def user_errors_are_one_line():
    """Wrap a CLI's main(): a PhysloraError becomes `error: <message>` and exit code 2."""
    try:
        yield
    except PhysloraError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
