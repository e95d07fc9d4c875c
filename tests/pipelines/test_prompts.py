"""Prompt validation: every malformed prompt is refused with an InputError that names the problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam3kit.errors import InputError
from sam3kit.pipelines import prompts as P


def test_boxes_ok():
    b = P.check_boxes([[0, 0, 10, 5], [2, 3, 4, 5]], 10, 5)
    assert b.dtype == np.float32 and b.shape == (2, 4)
    assert P.check_boxes(torch.tensor([1.0, 1, 2, 2]), 10, 10).shape == (1, 4)
    assert P.check_boxes([1, 1, 2, 2], 10, 10, single=True).shape == (4,)


@pytest.mark.parametrize("boxes, match", [
    ([[5, 0, 1, 4]], "inverted"),
    ([[1, 1, 1, 4]], "degenerate"),
    ([[0, 0, 11, 4]], "outside"),
    ([[-1, 0, 3, 4]], "outside"),
    ([[0, 0, float("nan"), 4]], "NaN"),
    ([[0, 0, 3]], r"shape \(N, 4\)"),
    (np.zeros((0, 4)), "empty"),
    ("abc", "numbers"),
])
def test_bad_boxes(boxes, match):
    with pytest.raises(InputError, match=match):
        P.check_boxes(boxes, 10, 5)


def test_labels():
    assert P.check_labels(None, 3, name="l").tolist() == [1, 1, 1]
    assert P.check_labels([True, False], 2, name="l").tolist() == [1, 0]
    with pytest.raises(InputError, match="1 .* or 0"):
        P.check_labels([1, 2], 2, name="l")
    with pytest.raises(InputError, match="one label per prompt"):
        P.check_labels([1], 2, name="l")
    with pytest.raises(InputError):
        P.check_labels(["a", "b"], 2, name="l")


def test_points():
    assert P.check_points([[1, 2]], 10, 10).shape == (1, 2)
    with pytest.raises(InputError, match="outside"):
        P.check_points([[11, 2]], 10, 10)
    with pytest.raises(InputError, match=r"shape \(N, 2\)"):
        P.check_points([[1, 2, 3]], 10, 10)
    with pytest.raises(InputError, match="NaN"):
        P.check_points([[float("nan"), 2]], 10, 10)


def test_mask_input():
    assert P.check_mask_input(np.zeros((1, 8, 8)), 8).shape == (1, 8, 8)
    with pytest.raises(InputError, match=r"\(8, 8\) low-resolution"):
        P.check_mask_input(np.zeros((16, 16)), 8)


def test_text_and_threshold():
    assert P.check_text("a cat") == "a cat"
    for bad in ("", "   ", None, 3):
        with pytest.raises(InputError):
            P.check_text(bad)
    assert P.check_threshold(0.3, "t") == 0.3
    for bad in (-0.1, 1.5, "x", float("nan")):
        with pytest.raises(InputError):
            P.check_threshold(bad, "t")
