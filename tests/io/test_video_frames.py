"""Videos given as images: folders (numeric order, hidden and other files skipped), lists of paths / PIL images /
arrays (decoded on access), streams (pulled on demand, look-back, end of stream), and what ``open_video`` accepts.
PNG frames are lossless, so every comparison here is exact."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from sam3kit.errors import ImageError, InputError
from sam3kit.io import video_frames
from sam3kit.io.video import EndOfVideo, FrameOutOfRange, frame_order_key, open_video

H, W = 12, 16


def frame(i: int, h: int = H, w: int = W) -> np.ndarray:
    """A frame unique to ``i``: its pixels are a function of the index and the position."""
    y, x = np.mgrid[:h, :w]
    return np.stack([(x + 3 * i) % 256, (y * 7 + i) % 256, np.full((h, w), i % 256)], -1).astype(np.uint8)


def test_frame_order_key():
    names = ["10.jpg", "frame_10.png", "2.jpg", "b.jpg", "0002.jpg", "1.jpg", "frame_9.png", "A.jpg", "a.jpg"]
    assert sorted(names, key=frame_order_key) == [
        "1.jpg", "0002.jpg", "2.jpg", "10.jpg", "A.jpg", "a.jpg", "b.jpg", "frame_9.png", "frame_10.png"]


# ----------------------------------------------------------------------------- folders
def test_folder_in_numeric_order_skips_hidden_and_other_files(tmp_path, caplog):
    d = tmp_path / "clip"
    d.mkdir()
    for i in np.random.default_rng(0).permutation(12):
        Image.fromarray(frame(i)).save(d / f"{i}.png")
    Image.fromarray(frame(99, 5, 5)).save(d / ".7.png")  # hidden (and of another size): never read
    Image.fromarray(frame(98, 5, 5)).save(d / "._3.png")  # a macOS resource file
    (d / "notes.txt").write_text("not a frame")
    (d / "sub").mkdir()
    with caplog.at_level(logging.INFO, logger="sam3kit.io.video_frames"):
        src = open_video(d)
    assert "notes.txt" in caplog.text and "sub/" in caplog.text and ".7.png" not in caplog.text
    with src:
        assert src.num_frames == 12 and src.frame_size == (H, W) and src.name == "clip" and not src.is_stream
        for i in [11, 0, 5, 10, 2, 1]:
            assert np.array_equal(src.frame(i), frame(i))
        with pytest.raises(FrameOutOfRange, match="frame 12 is out of range: the video has 12 frames"):
            src.frame(12)


def test_folder_with_prefixed_names(tmp_path):
    for i in (9, 10, 1, 100):
        Image.fromarray(frame(i)).save(tmp_path / f"frame_{i:d}.png")
    with open_video(str(tmp_path)) as src:
        assert [int(f[0, 0, 2]) for f in src] == [1, 9, 10, 100]


def test_empty_folder_and_folder_without_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="the folder is empty"):
        open_video(tmp_path / "empty")
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.txt").write_text("x")
    (d / "clip.mp4").write_bytes(b"x")
    (d / ".hidden.png").write_bytes(b"x")
    with pytest.raises(ImageError, match=r"no image files in the folder \(found a.txt, clip.mp4\)"):
        open_video(d)


def test_frame_of_another_size_is_named(tmp_path):
    for i in range(3):
        Image.fromarray(frame(i, *((H, W) if i != 2 else (H, W + 2)))).save(tmp_path / f"{i}.png")
    with open_video(tmp_path) as src:  # sizes are checked as frames are decoded
        src.frame(1)
        with pytest.raises(ImageError, match="frame 2 is 18x12 pixels but the video's frames are 16x12"):
            src.frame(2)


def test_unreadable_frame_file_is_named(tmp_path):
    Image.fromarray(frame(0)).save(tmp_path / "0.png")
    (tmp_path / "1.png").write_bytes(b"not a png")
    with open_video(tmp_path) as src:
        with pytest.raises(ImageError, match=r"frame 1: .*1.png"):
            src.frame(1)


# ----------------------------------------------------------------------------- lists
def test_lists_of_every_kind(tmp_path):
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(frame(i)).save(paths[-1])
    kinds = {
        "paths": paths,
        "strings": tuple(str(p) for p in paths),
        "pil": [Image.fromarray(frame(i)) for i in range(4)],
        "arrays": [frame(i) for i in range(4)],
        "mixed": [paths[0], Image.fromarray(frame(1)), frame(2), str(paths[3])],
        "array4d": np.stack([frame(i) for i in range(4)]),
        "tensors": [torch.from_numpy(frame(i)).permute(2, 0, 1) for i in range(4)],  # (3, H, W), torch's layout
        "tensor4d": torch.from_numpy(np.stack([frame(i) for i in range(4)])).permute(0, 3, 1, 2),
        "floats": [frame(i) / np.float32(255) for i in range(4)],  # in [0, 1]
    }
    for kind, frames in kinds.items():
        with open_video(frames) as src:
            assert src.num_frames == 4 and src.frame_size == (H, W) and not src.is_stream, kind
            for i in (3, 1, 0, 2):
                out = src.frame(i)
                assert out.dtype == np.uint8 and out.flags.c_contiguous and np.array_equal(out, frame(i)), kind
    assert open_video(paths).name == tmp_path.name and open_video(kinds["arrays"]).name == "frames"


def test_list_frames_are_decoded_on_access(monkeypatch):
    calls = []
    real = video_frames.load_image
    monkeypatch.setattr(video_frames, "load_image", lambda x, **kw: calls.append(1) or real(x, **kw))
    src = open_video([Image.fromarray(frame(i)) for i in range(50)])
    assert len(calls) == 1  # only the first frame, for the frame size
    src.frame(0)
    src.frame(30)
    src.frame(30)  # the last frame served is kept
    assert len(calls) == 2


def test_returned_frames_do_not_share_the_callers_arrays():
    for frames in ([frame(i) for i in range(3)], [torch.from_numpy(frame(i)) for i in range(3)]):
        with open_video(frames) as src:
            out = src.frame(1)
            assert out.flags.writeable
            out[:] = 0
            assert np.array_equal(np.asarray(frames[1]), frame(1)) and np.array_equal(src.frame(1), frame(1))


def test_list_refusals(tmp_path):
    with pytest.raises(ImageError, match="list of frames is empty"):
        open_video([])
    with open_video([frame(0), 42, tmp_path / "missing.png", frame(3, H + 1, W)]) as src:
        with pytest.raises(ImageError, match="frame 1: expected an image path"):
            src.frame(1)
        with pytest.raises(ImageError, match="frame 2: .*no such file"):
            src.frame(2)
        with pytest.raises(ImageError, match="frame 3 is 16x13 pixels"):
            src.frame(3)
    with pytest.raises(ImageError, match="frame 0: .*over the limit of 100"):
        open_video([frame(0)], max_pixels=100)


@pytest.mark.parametrize("source", [frame(0), torch.zeros(3, 4, 5), 42, b"clip.mp4", Image.fromarray(frame(0)),
                                    {"a": 1}])
def test_sources_that_are_not_videos(source):
    with pytest.raises(InputError):
        open_video(source)


def test_a_frame_source_is_passed_through():
    src = open_video([frame(0)])
    assert open_video(src) is src


# ----------------------------------------------------------------------------- streams
def _stream(n, pulled, closed=None, make=frame):
    try:
        for i in range(n):
            pulled.append(i)
            yield make(i)
    finally:
        if closed is not None:
            closed.append(True)


def test_stream_pulls_only_what_is_asked():
    pulled = []
    src = open_video(_stream(10, pulled))
    assert src.is_stream and src.num_frames is None and src.frame_size == (H, W) and src.name == "stream"
    assert pulled == [0]  # the first frame, for the frame size
    assert np.array_equal(src.frame(0), frame(0)) and np.array_equal(src.frame(0), frame(0))
    assert np.array_equal(src.frame(1), frame(1)) and pulled == [0, 1]
    with pytest.raises(InputError, match="frame 0 is no longer held: a stream keeps only its last 1 frame"):
        src.frame(0)
    assert np.array_equal(src.frame(4), frame(4)) and pulled == [0, 1, 2, 3, 4]  # frames 2, 3 pulled and dropped
    with pytest.raises(InputError, match="no longer held"):
        src.frame(3)
    assert src.num_frames is None


def test_stream_lookback():
    src = open_video(_stream(10, []), lookback=3)
    src.frame(5)
    for i in (3, 4, 5, 4, 3):
        assert np.array_equal(src.frame(i), frame(i))
    with pytest.raises(InputError, match=r"last 3 frame\(s\) \(frames 3..5 now\)"):
        src.frame(2)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="lookback"):
            open_video(_stream(3, []), lookback=bad)


def test_end_of_stream_sets_the_length():
    src = open_video(_stream(5, []), lookback=2)
    src.frame(4)
    with pytest.raises(EndOfVideo, match="frame 5 is past the end of the stream: it had 5 frames") as e:
        src.frame(5)
    assert isinstance(e.value, InputError) and src.num_frames == 5
    with pytest.raises(EndOfVideo):
        src.frame(9)
    assert np.array_equal(src.frame(4), frame(4))  # the look-back window outlives the end
    with pytest.raises(EndOfVideo):  # ending while skipping ahead
        open_video(_stream(3, [])).frame(7)


def test_stream_iteration_and_kinds_of_items(tmp_path):
    assert [int(f[0, 0, 2]) for f in open_video(_stream(6, []))] == list(range(6))
    Image.fromarray(frame(1)).save(tmp_path / "1.png")
    items = iter([Image.fromarray(frame(0)), tmp_path / "1.png", frame(2)])
    assert [int(f[0, 0, 2]) for f in open_video(items)] == [0, 1, 2]

    class Camera:  # an iterable that is not an iterator
        def __iter__(self):
            return (frame(i) for i in range(3))

    assert open_video(Camera()).frame(2)[0, 0, 2] == 2


def test_stream_refusals():
    with pytest.raises(ImageError, match="stream is empty"):
        open_video(_stream(0, []))
    src = open_video(_stream(4, [], make=lambda i: frame(i, H, W + (i == 2))))
    src.frame(1)
    with pytest.raises(ImageError, match="frame 2 is 17x12 pixels"):
        src.frame(2)
    assert np.array_equal(src.frame(3), frame(3))  # the bad frame kept its index


def test_closing_a_stream_closes_its_generator():
    closed = []
    with open_video(_stream(10, [], closed)) as src:
        src.frame(2)
    assert closed == [True]
    with pytest.raises(InputError, match="closed"):
        src.frame(3)
