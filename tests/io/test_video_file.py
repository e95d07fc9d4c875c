"""Video files through PyAV: frame indexes, random access against sequential decoding, seeking and the window of
decoded frames, frame counts where the container states none, every refusal; and ``write_video``.

Every video here is made in the test with PyAV. Frame ``i`` shows ``i`` as a pattern that survives lossy coding:
a 4x3 grid of 16x16 blocks, block ``k`` orange when bit ``k`` of ``i`` is set and blue otherwise; the block
centres are read back (red channel above 120 = bit set) and the whole frame must be within a small mean error of
the pattern (which also catches a BGR/RGB swap).
"""

from __future__ import annotations

import os
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from sam3kit.errors import ImageError, InputError, OutputError
from sam3kit.io.video import EndOfVideo, FrameOutOfRange, FrameSource, open_video, write_video

H, W = 48, 64
ON, OFF = (220, 60, 30), (20, 90, 200)


def pattern(i: int, h: int = H, w: int = W) -> np.ndarray:
    a = np.empty((h, w, 3), np.uint8)
    a[:] = OFF
    for k in range(12):
        if i >> k & 1:
            r, c = divmod(k, 4)
            a[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16] = ON
    return a


def read_index(a: np.ndarray) -> int:
    """The frame index a decoded frame shows; also checks it is close to that frame's pattern overall."""
    assert a.shape == (H, W, 3) and a.dtype == np.uint8 and a.flags.c_contiguous
    i = sum(1 << k for k in range(12) if a[divmod(k, 4)[0] * 16 + 8, divmod(k, 4)[1] * 16 + 8, 0] > 120)
    err = np.abs(a.astype(np.int16) - pattern(i)).mean()
    assert err < 12, f"frame showing {i} is {err:.1f} levels off its pattern on average"
    return i


def make_video(path, n, *, fmt=None, codec="libx264", gop=5, bframes=2, rate=25, pts=None, time_base=None,
               rotation=None):
    """Encode frames 0..n-1 (``pattern(i)``) into ``path``; ``pts`` in ``time_base`` units if given."""
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height = W, H
        s.pix_fmt = "yuv420p" if codec != "mjpeg" else "yuvj420p"
        if codec == "libx264":
            s.codec_context.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"}
        else:
            s.codec_context.gop_size = gop
        tb = time_base or Fraction(1, rate)
        s.codec_context.time_base = tb
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i in range(n):
            f = av.VideoFrame.from_ndarray(pattern(i), format="rgb24")
            f.pts, f.time_base = (i if pts is None else pts[i]), tb
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    vfr = [0, 40, 50, 130, 140, 300, 310, 320, 400, 480, 490, 560]  # irregular presentation times, in ms
    return {
        "mp4": make_video(d / "clip.mp4", 12),
        "mp4_long": make_video(d / "long.mp4", 40, gop=8, bframes=3),
        "mkv": make_video(d / "clip.mkv", 40, gop=8),
        "ts": make_video(d / "clip.ts", 40, gop=8),
        "mkv_vfr": make_video(d / "vfr.mkv", 12, pts=vfr, time_base=Fraction(1, 1000)),
        "h264": make_video(d / "raw.h264", 20, fmt="h264", gop=6),
        "webm": make_video(d / "clip.webm", 24, codec="libvpx-vp9", gop=8),
        "avi": make_video(d / "clip.avi", 24, codec="mpeg4", gop=8),
        "300": make_video(d / "300.mp4", 300, gop=30, bframes=2),
    }


# ----------------------------------------------------------------------------- reading
def test_frames_come_back_in_presentation_order(videos):
    with open_video(videos["mp4"]) as src:
        assert isinstance(src, FrameSource) and not src.is_stream
        assert src.num_frames == 12 and src.frame_size == (H, W) and src.name == "clip" and src.fps == 25
        assert [read_index(src.frame(i)) for i in range(12)] == list(range(12))


@pytest.mark.parametrize("kind", ["mp4_long", "mkv", "ts", "mkv_vfr", "h264", "webm", "avi"])
def test_random_access_equals_sequential_decoding(videos, kind):
    with open_video(videos[kind]) as src:
        sequential = list(src)
    n = len(sequential)
    assert [read_index(f) for f in sequential] == list(range(n))
    order = list(np.random.default_rng(0).permutation(n)) + list(range(n - 1, -1, -1))
    with open_video(videos[kind], cache_bytes=0) as src:  # a window of 2 frames: most requests seek
        for i in order:
            assert np.array_equal(src.frame(i), sequential[i]), f"frame {i}"
        assert src.seeks > 0


def test_container_without_a_frame_count(videos):
    """Matroska states no frame count (PyAV reports 0): the count comes from the packets; frame times are
    irregular (variable frame rate), so an index derived from the frame rate would be wrong."""
    with av.open(str(videos["mkv_vfr"])) as c:
        assert c.streams.video[0].frames == 0
    with open_video(videos["mkv_vfr"]) as src:
        assert src.num_frames == 12
        assert [read_index(src.frame(i)) for i in (11, 3, 0, 7, 2, 5)] == [11, 3, 0, 7, 2, 5]
    with av.open(str(videos["mkv"])) as c:
        assert c.streams.video[0].frames == 0
    with open_video(videos["mkv"]) as src:
        assert src.num_frames == 40


def test_raw_stream_without_timestamps_is_counted_in_decoding_order(videos):
    with av.open(str(videos["h264"])) as c:
        assert any(p.pts is None for p in c.demux(c.streams.video[0]) if p.size)
    with open_video(videos["h264"]) as src:
        assert src.num_frames == 20
        assert read_index(src.frame(19)) == 19 and read_index(src.frame(4)) == 4


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_rotated_videos_are_turned_upright(tmp_path, degrees):
    """A display matrix rotating the picture counter-clockwise by ``degrees`` (PyAV's reading of it; a phone
    filming upright writes -90) is applied, as a player does."""
    make_video(tmp_path / "r.mp4", 4, rotation=degrees)
    turns = degrees // 90 % 4
    with open_video(tmp_path / "r.mp4") as src:
        assert src.frame_size == ((W, H) if turns % 2 else (H, W))
        for i in (3, 0, 2):
            f = src.frame(i)
            assert f.flags.c_contiguous and f.shape[:2] == src.frame_size
            assert read_index(np.ascontiguousarray(np.rot90(f, -turns))) == i


def test_a_truncated_file_gives_the_frames_it_holds(tmp_path, videos):
    data = videos["mkv"].read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) * 3 // 4])
    with open_video(tmp_path / "cut.mkv") as src:
        assert 0 < src.num_frames < 40
        assert [read_index(src.frame(i)) for i in range(src.num_frames - 1, -1, -1)] == \
            list(range(src.num_frames - 1, -1, -1))


def test_reading_in_order_never_seeks(videos):
    with open_video(videos["mp4_long"]) as src:
        for i in range(40):
            read_index(src.frame(i))
            src.frame(i)  # the same frame again comes from the window
        assert src.seeks == 0 and src.decoded_frames == 40


def test_reading_backwards_decodes_each_group_of_pictures_about_once(videos):
    with open_video(videos["mp4_long"]) as src:  # 40 frames, a key frame every 8, a window of 32 frames here
        assert [read_index(src.frame(i)) for i in range(39, -1, -1)] == list(range(39, -1, -1))
        assert src.decoded_frames <= 2 * 40  # decoding from the key frame for every frame would be ~4.5 x 40


def test_opening_a_long_video_decodes_almost_nothing(videos):
    with open_video(videos["300"]) as src:
        assert src.num_frames == 300 and src.decoded_frames <= 2
        assert read_index(src.frame(299)) == 299
        assert src.decoded_frames <= 2 + 30 + 3  # one group of pictures (30 frames), not the whole video
        before = src.decoded_frames
        assert read_index(src.frame(151)) == 151
        assert src.decoded_frames - before <= 30 + 3


def test_returned_frames_belong_to_the_caller(videos):
    with open_video(videos["mp4"]) as src:
        a = src.frame(3)
        a[:] = 0
        assert read_index(src.frame(3)) == 3


def test_frame_index_errors(videos):
    with open_video(videos["mp4"]) as src:
        with pytest.raises(FrameOutOfRange, match="frame 12 is out of range: the video has 12 frames") as e:
            src.frame(12)
        assert isinstance(e.value, InputError) and isinstance(e.value, IndexError)
        assert not isinstance(e.value, EndOfVideo)
        with pytest.raises(FrameOutOfRange, match="start at 0"):
            src.frame(-1)
        for bad in (1.5, "2", True, None):
            with pytest.raises(InputError, match="integer"):
                src.frame(bad)
        assert read_index(src.frame(np.int64(2))) == 2


def test_closed_source(videos):
    src = open_video(videos["mp4"])
    with src:
        src.frame(0)
    assert src.closed
    src.close()  # idempotent
    with pytest.raises(InputError, match="closed"):
        src.frame(0)
    assert "closed" in repr(src)


def test_max_pixels(videos):
    with pytest.raises(ImageError, match="over the limit of 3071 pixels"):
        open_video(videos["mp4"], max_pixels=H * W - 1)
    with open_video(videos["mp4"], max_pixels=H * W) as src:
        assert src.num_frames == 12


def _audio_only(path):
    with av.open(str(path), "w", format="wav") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        f = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        f.sample_rate = 8000
        for p in s.encode(f):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def test_refusals(tmp_path, videos):
    cases = {
        "missing.mp4": ("no such file", None),
        "empty.mp4": ("empty file", b""),
        "notes.txt": ("not a video", b"hello, this is text\n" * 20),
        "noise.mp4": ("not a video FFmpeg can read", np.random.default_rng(0).bytes(5000)),
        "half.mp4": ("not a video FFmpeg can read", videos["mp4"].read_bytes()[: videos["mp4"].stat().st_size // 2]),
        "frame.png": ("single image, not a video", b"\x89PNG\r\n\x1a\n"),
    }
    for name, (message, data) in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageError, match=message):
            open_video(tmp_path / name)
    _audio_only(tmp_path / "sound.wav")
    with pytest.raises(ImageError, match="without a video stream"):
        open_video(tmp_path / "sound.wav")


def test_missing_pyav_names_the_extra(monkeypatch, videos, tmp_path):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    with pytest.raises(ImageError, match=r"pip install 'sam3kit\[video\]'"):
        open_video(videos["mp4"])
    with pytest.raises(OutputError, match=r"pip install 'sam3kit\[video\]'"):
        write_video(tmp_path / "out.mp4", [pattern(0)], 25)
    assert os.listdir(tmp_path) == []
    with open_video([pattern(0), pattern(1)]) as src:  # frames given as images need no PyAV
        assert src.num_frames == 2


# ----------------------------------------------------------------------------- writing
def test_written_video_reads_back(tmp_path):
    out = write_video(tmp_path / "overlay.mp4", (pattern(i) for i in range(12)), 25)
    assert out == tmp_path / "overlay.mp4" and os.listdir(tmp_path) == ["overlay.mp4"]
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert c.format.name.startswith("mov,mp4") and s.codec_context.name == "h264"
        assert s.codec_context.pix_fmt == "yuv420p"
    with open_video(out) as src:
        assert src.num_frames == 12 and src.frame_size == (H, W) and src.fps == 25
        assert [read_index(f) for f in src] == list(range(12))


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = [pattern(i)[: H - 1, : W - 1] for i in range(5)]
    write_video(tmp_path / "odd.mp4", frames, Fraction(30000, 1001))
    with open_video(tmp_path / "odd.mp4") as src:
        assert src.frame_size == (H, W) and src.num_frames == 5 and abs(src.fps - 29.97) < 0.01
        for i in range(5):
            f = src.frame(i)
            assert read_index(f) == i
            assert np.abs(f[-1].astype(int) - f[-2]).mean() < 12  # the padding repeats the last row


def test_writing_is_atomic(tmp_path):
    def failing():
        for i in range(3):
            yield pattern(i)
        raise RuntimeError("the tracker failed")

    with pytest.raises(RuntimeError, match="tracker failed"):
        write_video(tmp_path / "a.mp4", failing(), 25)
    with pytest.raises(InputError, match="frame 2 is 32x48 pixels but the first frame is 64x48"):
        write_video(tmp_path / "b.mp4", [pattern(0), pattern(1), pattern(2)[:, :32]], 25)
    with pytest.raises(InputError, match="no frames"):
        write_video(tmp_path / "c.mp4", [], 25)
    with pytest.raises(ImageError, match="frame 1"):
        write_video(tmp_path / "d.mp4", [pattern(0), tmp_path / "missing.png"], 25)
    assert os.listdir(tmp_path) == []  # nothing left behind, not even a temporary file


def test_write_refuses_to_overwrite_and_bad_fps(tmp_path):
    write_video(tmp_path / "v.mp4", [pattern(1)], 10)
    before = (tmp_path / "v.mp4").read_bytes()
    with pytest.raises(OutputError, match="exists already"):
        write_video(tmp_path / "v.mp4", [pattern(2)], 10)
    assert (tmp_path / "v.mp4").read_bytes() == before
    write_video(tmp_path / "v.mp4", [pattern(2), pattern(3)], 10, overwrite=True)
    with open_video(tmp_path / "v.mp4") as src:
        assert [read_index(f) for f in src] == [2, 3]
    for fps in (0, -5, float("nan"), float("inf"), "fast", None, True):
        with pytest.raises(InputError, match="fps"):
            write_video(tmp_path / "w.mp4", [pattern(0)], fps)
    assert sorted(os.listdir(tmp_path)) == ["v.mp4"]
