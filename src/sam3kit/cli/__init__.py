"""The ``sam3kit`` command: ``segment``, ``track``, ``serve``, ``info``, ``convert``, ``env``.

Exit codes (``exit_codes.py``): 0 success; 2 a user mistake (bad option, missing file, wrong checkpoint: any
``Sam3Error``), printed as one line on stderr without a traceback; 1 an unexpected error (a bug: the message asks for
``--debug``); 130 interrupted. ``--debug`` prints the traceback in every case, ``-v`` the details of an error and
the library's log. Warnings of the library are printed as ``sam3kit: warning: ...`` lines.

Help texts are plain text: the reStructuredText markup of the docstrings they come from is removed
(``plain_text``). Values that start with ``-`` and a digit (``--box -5,10,50,50``) are taken as values of the
coordinate options, not as options (``attach_negative_values``).

The commands that process many inputs (``segment``) share their pieces: ``inputs.py`` (input files and the
``--box`` / ``--point`` specs), ``jobs.py`` (output folders, the skip check, the run over the inputs, the summary),
``manifest.py`` (``result.json``: what a finished job ran with), ``job_outputs.py`` (writing one job's files as a
unit), ``model_args.py`` (the ``--model`` / runtime flags and loading), ``device.py`` and ``report.py``.
``track`` (one video: ``track.py``, its prompt specs in ``track_args.py``) reuses the model, runtime, output-folder
and progress pieces.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from typing import Mapping, Optional, Sequence

from .. import __version__
from .exit_codes import INTERRUPTED, PROG, report_error


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default; keeps the line breaks of texts that have some (examples)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if action.default is None:
            return text + " (default: none)"
        if isinstance(action.default, (list, tuple)):
            return text + f" (default: {','.join(map(str, action.default))})"
        return text + " (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error message (usage is one ``--help`` away) and plain-text help."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {plain_text(message)} (see '{self.prog} --help')\n")

    def format_help(self) -> str:
        return plain_text(super().format_help())


_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(text: str) -> str:
    """reStructuredText markup removed: ``x`` -> x, :func:`x` -> x, a literal-block "::" -> ":"."""
    text = _LITERAL.sub(r"\1", _ROLE.sub(r"\1", text))
    return re.sub(r"(?<=\S)::(?=\s|$)", ":", text)


def attach_negative_values(argv: Sequence[str], options: Mapping[str, str]) -> list[str]:
    """``--box -5,10,50,50`` (or ``-b -5,10,50,50``) -> ``--box=-5,10,50,50`` for the ``options`` whose values
    are coordinates (option string -> its long form).

    argparse takes a word that starts with ``-`` for an option unless it is a plain negative number, so a
    coordinate list such as ``-5,10,50,50`` would leave ``--box`` without its value. Words after ``--`` are left
    alone.
    """
    out: list[str] = []
    it = iter(argv)
    for word in it:
        if word == "--":
            out.append(word)
            out.extend(it)
            break
        if word in options:
            nxt = next(it, None)
            if nxt is not None and re.match(r"-\.?\d", nxt):
                out.append(f"{options[word]}={nxt}")
                continue
            out.append(word)
            if nxt is not None:
                out.append(nxt)
            continue
        out.append(word)
    return out


def build_parser() -> ArgumentParser:
    from . import batch, convert, env, export, info, segment, serve, track

    parser = ArgumentParser(
        prog=PROG, formatter_class=HelpFormatter,
        description="Segment Anything Model 3 from the shell: concept (text / exemplar box) and interactive "
                    "(click / box) segmentation of images, click / box / mask tracking in videos, checkpoint "
                    "inspection and conversion.",
        epilog="Run 'sam3kit COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="print tracebacks of errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does, and the details of errors (to stderr)")
    common = ArgumentParser(add_help=False)
    # SUPPRESS: a flag given before the command is not reset by the command's own default
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="print tracebacks of errors")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log what the library does, and the details of errors (to stderr)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    for module in (segment, track, batch, serve, info, convert, export, env):
        module.add_parser(sub, common, HelpFormatter)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``sam3kit`` command; returns the exit code."""
    from .prompt_args import COORDINATE_OPTIONS

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(attach_negative_values(argv, COORDINATE_OPTIONS))
    debug = bool(getattr(args, "debug", False))
    verbose = bool(getattr(args, "verbose", False)) or debug
    handler = None
    if verbose:
        logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, stream=sys.stderr,
                            format="%(levelname)s %(name)s: %(message)s")
    else:  # the library's warnings, one line each (no handler: Python would print them bare)
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter(f"{PROG}: warning: %(message)s"))
        logging.getLogger("sam3kit").addHandler(handler)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{PROG}: interrupted\n")
        return INTERRUPTED
    except BrokenPipeError:  # `sam3kit ... | head`
        _silence_stdout()
        return 0
    except BaseException as e:  # noqa: BLE001 - the one place that turns exceptions into exit codes
        if isinstance(e, SystemExit):
            raise
        return report_error(e, debug, verbose=verbose)
    finally:
        if handler is not None:
            logging.getLogger("sam3kit").removeHandler(handler)


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
