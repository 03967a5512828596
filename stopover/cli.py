"""The `stopover` command line: argument parsing and error presentation only.

Subcommands live in `stopover.commands.*` and are discovered at start-up.
A `StopoverError` becomes one line on stderr and exit code 2; any other
exception is a bug and keeps its traceback only under `--debug`. Python
warnings (ours and the libraries') become one `warning: <message>` line each,
without the source path and line Python would add, and each distinct message
is shown once per command.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Iterator

from stopover import __version__
from stopover.errors import StopoverError


def _command_modules() -> list[ModuleType]:
    import stopover.commands as pkg

    modules = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        modules.append(importlib.import_module(f"stopover.commands.{info.name}"))
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stopover",
        description="English intermediate-task training and zero-shot cross-lingual transfer.",
    )
    parser.add_argument("--version", action="version", version=f"stopover {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks on errors")
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def one_line(text: str) -> str:
    """`text` on one line: line breaks a message quotes from the data (a column name, a value) escaped."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def warning_line(message: Warning | str) -> str:
    """The one line a warning is shown as: `warning: <message>`, its lines joined."""
    return "warning: " + " ".join(line.strip() for line in str(message).splitlines() if line.strip())


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show each distinct warning once, as `warning_line`, while the block runs.

    `showwarning` is replaced, not the filters: what a filter silences stays silent, and
    Python's own once-per-source-line rule still applies before the once-per-message one here.
    The line goes to the `sys.stderr` of the moment (a rich progress display redirects it
    above its bars). Under `--debug` the caller skips this and Python's own format is kept.
    """
    shown: set[str] = set()
    original = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        text = warning_line(message)
        if text in shown:
            return
        shown.add(text)
        print(text, file=file if file is not None else sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    debug = getattr(args, "debug", False)
    try:
        if debug:
            return int(args._run(args) or 0)
        with one_line_warnings():
            return int(args._run(args) or 0)
    except StopoverError as err:
        if debug:
            raise
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug, not bad input: say so, keep the trace under --debug
        if debug:
            raise
        print(f"internal error: {type(err).__name__}: {err} (re-run with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
