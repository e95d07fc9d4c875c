"""Fixtures of the video pipeline tests (helpers in ``video_clips``)."""

from __future__ import annotations

import pytest

from video_clips import moving_disc_clip, tiny_video_model


@pytest.fixture(scope="package")
def model():
    return tiny_video_model(0)


@pytest.fixture(scope="package")
def clip():
    return moving_disc_clip(10)
