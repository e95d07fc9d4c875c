"""How the ``sam3kit`` command turns an exception into one line on stderr and an exit code.

0 success; 2 a user mistake (bad option, missing file, wrong checkpoint: any ``Sam3Error``), printed as one line
without a traceback; 1 an unexpected error (a bug: the message asks for ``--debug``); 130 interrupted.
"""

from __future__ import annotations

import sys

PROG = "sam3kit"
OK = 0
BUG = 1
USER_MISTAKE = 2
INTERRUPTED = 130


def report_error(e: BaseException, debug: bool, prefix: str = "") -> int:
    """Print ``e`` as sam3kit prints errors; return the exit code it stands for (2 user mistake, 1 bug).

    ``prefix`` goes before the message (e.g. the input file it is about); ``debug`` also prints the traceback.
    """
    from ..errors import Sam3Error

    if debug:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
    if isinstance(e, Sam3Error):
        sys.stderr.write(f"{PROG}: error: {prefix}{e}\n")
        return USER_MISTAKE
    hint = "" if debug else " (run with --debug for the traceback, and please report it)"
    sys.stderr.write(f"{PROG}: unexpected error: {prefix}{type(e).__name__}: {e}{hint}\n")
    return BUG
