"""``Sam3Error``: a one-line message, the long part in ``details``."""

from __future__ import annotations

import pickle

from sam3kit.errors import CheckpointError, ImageError, InputError, OutputError, Sam3Error


def test_details_default_empty_and_kept():
    e = CheckpointError("bad checkpoint")
    assert str(e) == "bad checkpoint" and e.details == () and e.message == "bad checkpoint"
    e = CheckpointError("bad checkpoint", details=["missing: a", "missing: b"])
    assert str(e) == "bad checkpoint" and e.details == ("missing: a", "missing: b")
    assert e.full_text() == "bad checkpoint\n  missing: a\n  missing: b"


def test_a_message_of_several_lines_keeps_its_first():
    e = InputError("first line\n  second\n\nthird", details=["fourth"])
    assert str(e) == "first line" and e.details == ("  second", "third", "fourth")
    assert isinstance(e, ValueError) and isinstance(ImageError("x"), ValueError)


def test_pickling_keeps_type_message_and_details():
    for cls in (Sam3Error, CheckpointError, InputError, ImageError, OutputError):
        e = pickle.loads(pickle.dumps(cls("msg", details=("d1",))))
        assert type(e) is cls and str(e) == "msg" and e.details == ("d1",)
