"""The direct memory map of safetensors files gives the same tensors as the safetensors library."""

import json
import struct

import torch
from safetensors.torch import load_file, save_file

from sam3kit.weights.reader import _map_safetensors


def test_mapped_tensors_equal_safetensors(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {"a": torch.randn(3, 5, generator=g), "b": torch.randn(7, generator=g).half(),
               "c": torch.arange(6, dtype=torch.int64).view(2, 3), "empty": torch.zeros(0, 4)}
    f = tmp_path / "m.safetensors"
    save_file(tensors, str(f))
    mapped = _map_safetensors(f)
    ref = load_file(str(f))
    assert mapped is not None and set(mapped) == set(ref)
    for k, (t, dtype) in mapped.items():
        assert t.dtype == ref[k].dtype and torch.equal(t, ref[k]), k
    assert mapped["b"][1] == "F16"
    # copy-on-write: writing to a mapped tensor leaves the file unchanged
    mapped["a"][0].fill_(0.0)
    assert torch.equal(load_file(str(f))["a"], tensors["a"])


def test_unusual_files_fall_back_to_the_library(tmp_path):
    f = tmp_path / "odd.safetensors"
    header = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [1, 5]}}).encode()
    header += b" " * (-len(header) % 8)
    f.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 5)  # a float at a 1-byte offset
    assert _map_safetensors(f) is None
    f.write_bytes(b"\xff" * 16)
    assert _map_safetensors(f) is None
