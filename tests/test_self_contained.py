"""The repository is self-contained: no code, test or fixture names a path outside it.

A user's clone has nothing beside it, so a test that reads ``../shared/...`` or an absolute path of one machine
fails there (``.ci/run`` runs the suite from such a clone; this test says which line to fix).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ["src", "tests", "benchmarks"]  # tools/oracle runs in a separate environment, set up outside the project
CODE_SUFFIXES = {".py", ".toml", ".cfg", ".ini", ".sh"}
EXTRA_FILES = [".ci/run", "pyproject.toml"]

# written in pieces so that this file does not match itself
_OUTSIDE = re.compile("|".join([
    r"\.\./" + "shared",                         # the workshop folder beside the checkout
    r"[\"'\s(=:]/(?:" + "work|root|home|Users" + r")/",  # absolute paths of one machine
    r"[\"']" + "shared" + r"[\"']\s*/\s*[\"']oracle",  # a Path joined with the folders shared, oracle
]))
_PARENTS = re.compile(r"__file__\)?(?:\.resolve\(\))?\.parents\[(\d+)\]")


def _files() -> list[Path]:
    out = [ROOT / f for f in EXTRA_FILES if (ROOT / f).is_file()]
    for top in SCANNED:
        out += [p for p in (ROOT / top).rglob("*") if p.suffix in CODE_SUFFIXES and p.is_file()]
    return [p for p in out if p.resolve() != Path(__file__).resolve() and "__pycache__" not in p.parts]


def test_no_file_names_a_path_outside_the_repository():
    problems = []
    for p in _files():
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            if _OUTSIDE.search(line):
                problems.append(f"{p.relative_to(ROOT)}:{n}: {line.strip()}")
            for m in _PARENTS.finditer(line):
                target = p.resolve().parents[int(m.group(1))]
                if target != ROOT and ROOT not in target.parents:
                    problems.append(f"{p.relative_to(ROOT)}:{n}: parents[{m.group(1)}] is {target}, outside the "
                                    f"repository: {line.strip()}")
    assert not problems, ("keep test data in the repository (e.g. tests/data/) and name it relative to the "
                          "file that reads it:\n" + "\n".join(problems))


def test_the_check_finds_what_it_looks_for(tmp_path):
    """The patterns match the forms that broke a clone before (so the test above cannot pass vacuously)."""
    bad = ['KEYS = Path("/wo' + 'rk/sha' + 'red/ora' + 'cle/keys.txt")',
           'ORACLE = Path(__file__).resolve().parents[3] / "sha' + 'red" / "oracle"',
           '"""read from ../sha' + 'red/oracle/keys_hf.txt"""']
    assert all(_OUTSIDE.search(line) for line in bad)
    assert _PARENTS.search(bad[1]).group(1) == "3"
