"""The ``icesat2sr`` command.

Bad input exits with status 2 and one stderr line starting ``error:`` (no traceback), and never
writes the output file. Unexpected failures exit 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..request.errors import Icesat2srError, ServiceError, WriteError
from .options import EXIT_BAD_INPUT, UsageError
from .process import add_atl03x, add_discovered, add_index, add_process
from .tools import add_bench, add_demo, add_plot, add_serve, add_synth


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise UsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``icesat2sr`` console script."""
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "run", None):
            parser.print_help()
            return EXIT_BAD_INPUT
        return args.run(args) or 0
    except (ServiceError, WriteError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (Icesat2srError, ValueError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"error: internal failure ({type(exc).__name__}: {_one_line(exc)}); "
              "rerun with --debug for details", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="icesat2sr", description="SlideRule ATL06-SR processing of ICESat-2 ATL03 granules")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(parser_class=_Parser, metavar="COMMAND")
    add_synth(sub)
    for kind in ("atl06", "atl03s", "atl08"):
        add_process(sub, kind)
    for kind in ("atl06p", "atl03sp", "atl08p"):
        add_discovered(sub, kind)
    add_atl03x(sub)
    add_index(sub)
    add_demo(sub)
    add_bench(sub)
    add_serve(sub)
    add_plot(sub)
    return parser


