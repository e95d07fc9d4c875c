"""How the ``sam3kit`` command turns an exception into one line on stderr and an exit code.

0 success; 2 a user mistake (bad option, missing file, wrong checkpoint: any ``Sam3Error``), printed as one line
without a traceback; 1 an unexpected error (a bug: the message asks for ``--debug``); 130 interrupted.

One line: the first line of the message, without terminal colour codes. The rest of a longer message, and the
``details`` a ``Sam3Error`` carries (for example every mismatched key of a checkpoint), follow indented with
``-v`` or ``--debug``; ``--debug`` prints the traceback too.
"""

from __future__ import annotations

import re
import sys

PROG = "sam3kit"
OK = 0
BUG = 1
USER_MISTAKE = 2
INTERRUPTED = 130

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def plain_lines(text: str) -> list[str]:
    """``text`` without terminal escape codes, as its non-empty lines (at least one, maybe empty)."""
    lines = [line.rstrip() for line in _ANSI.sub("", text).splitlines()]
    return [line for line in lines if line.strip()] or [""]


def report_error(e: BaseException, debug: bool, prefix: str = "", verbose: bool = False) -> int:
    """Print ``e`` as sam3kit prints errors; return the exit code it stands for (2 user mistake, 1 bug).

    ``prefix`` goes before the message (e.g. the input file it is about); ``verbose`` adds the rest of the message
    and ``e.details``; ``debug`` also prints the traceback.
    """
    from ..errors import Sam3Error

    if debug:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
    first, *rest = plain_lines(str(e))
    details = [line for d in (getattr(e, "details", None) or ()) for line in plain_lines(str(d))]
    more = " (-v for the details)" if (rest or details) and not (verbose or debug) else ""
    if isinstance(e, Sam3Error):
        sys.stderr.write(f"{PROG}: error: {prefix}{first}{more}\n")
        code = USER_MISTAKE
    else:
        hint = "" if debug else " (run with --debug for the traceback, and please report it)"
        sys.stderr.write(f"{PROG}: unexpected error: {prefix}{type(e).__name__}: {first}{more}{hint}\n")
        code = BUG
    if verbose or debug:
        for line in rest + details:
            sys.stderr.write(f"  {line}\n")
    return code
