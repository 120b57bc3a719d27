"""Command line: a thin layer. Each command lives in a module of its own and imports what it
needs when it runs, so ``harness --help`` and ``harness validate`` start fast.

Exit codes (contract): 0 ok; 1 a case failed (run) or a regression (compare); 2 bad input;
3 inconclusive (compare); 70 a harness bug (the traceback is saved, finished cases are kept);
128+N ended by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
"""

from __future__ import annotations

import sys

import typer

from ..errors import EXIT_BUG, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, InputError
from ..run.signals import reraise_interrupt
from .ab import ab
from .baseline import baseline_app
from .compare import compare
from .doctor import doctor
from .export import export
from .node import node_app
from .profile import profile
from .report import report
from .run import run
from .runtimes import runtimes_app
from .validate import schema, validate
from .variants import variants

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark ONNX models across execution providers, precisions and machines.")
for command in (run, validate, schema, doctor, variants, report, compare, ab, export, profile):
    app.command()(command)
app.add_typer(runtimes_app, name="runtimes")
app.add_typer(baseline_app, name="baseline")
app.add_typer(node_app, name="node")


def main() -> None:
    """The one error -> exit code policy for every command."""
    try:
        code = app(standalone_mode=False)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_INPUT)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", None)
        sys.exit(128 + signum if signum else EXIT_INTERRUPTED)
    except Exception as exc:
        # Usage errors (unknown option, bad value). Typer vendors click in recent releases and
        # uses the click package in older ones, so recognise them by shape, not by class.
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):
            show()
            sys.exit(EXIT_INPUT)
        if type(exc).__name__ == "Abort":
            sys.exit(EXIT_INTERRUPTED)
        try:  # an error raised while unwinding from Ctrl-C or SIGTERM is the interrupt, not a bug
            reraise_interrupt(exc)
        except KeyboardInterrupt as interrupt:
            signum = getattr(interrupt, "signum", None)
            sys.exit(128 + signum if signum else EXIT_INTERRUPTED)
        report_bug(exc)
        sys.exit(EXIT_BUG)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def report_bug(exc: BaseException) -> None:
    """One line on stderr; the traceback goes to a file (a CI log keeps the line, the file keeps the detail)."""
    import os
    import tempfile
    import time
    import traceback
    from pathlib import Path

    from ..paths import crash_dir

    text = "".join(traceback.format_exception(exc))
    name = f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.txt"
    saved = None
    for folder in (crash_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(f"harness {' '.join(sys.argv[1:])}\n\n{text}")
            saved = folder / name
            break
        except OSError:
            continue
    where = f"traceback saved to {saved}" if saved else f"traceback:\n{text}"
    message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    kept = " Finished cases are kept in the results file." if sys.argv[1:2] == ["run"] else ""
    print(f"error: harness bug ({message}); {where}; please report it.{kept}", file=sys.stderr)


if __name__ == "__main__":
    main()
