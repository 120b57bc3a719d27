"""Errors that map to exit codes.

Bad input (a suite, a model, a results file) must end in ONE line that names the file,
the field or input, and what to do, with exit code 2. Raising ``InputError`` anywhere
below the CLI gets exactly that; anything else is a harness bug: exit 70, one line, and the
traceback saved to a file (see harness.cli.main).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # run: a case failed; compare: a regression
EXIT_INPUT = 2
EXIT_INCONCLUSIVE = 3
EXIT_ACCURACY = 4  # run: every case ran, but a variant fell below the suite's accuracy thresholds
EXIT_INVALID = 5  # run: every case ran, but a LoadGen serving scenario was INVALID (LoadGen's verdict)
EXIT_BUG = 70  # EX_SOFTWARE: a harness bug, never to be read as "a case failed" (1) or "ok" (0)
EXIT_INTERRUPTED = 130


class InputError(Exception):
    """Bad user input; the message is the whole one-line explanation."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
