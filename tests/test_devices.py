"""The device parametrisation of the parity tests (``tests/fixtures/devices.py``): which devices a run gets, and
moving nested inputs (feature records, transformers' outputs) to a device."""

from __future__ import annotations

import pytest
import torch

from fixtures import devices
from sam3kit.model.features import TextFeatures

META = torch.device("meta")


def test_the_cpu_always_and_the_device_under_test_when_named(monkeypatch):
    monkeypatch.setenv(devices.ENV, "cpu")
    cpu, other = devices.device_params()
    assert (cpu.values[0].name, cpu.values[0].plain, cpu.id) == ("cpu", False, "cpu")
    assert (other.values[0].name, other.values[0].plain, other.id) == ("cpu", True, "on-cpu")
    assert [m.name for m in other.marks] == ["device_under_test"] and not cpu.marks
    monkeypatch.delenv(devices.ENV)
    expected = 2 if torch.cuda.is_available() else 1
    assert len(devices.device_params()) == expected


def test_the_device_under_test_loads_the_plain_model(tiny_checkpoint):
    """The CPU pass gets load's CPU speed set (its module swaps live in sam3kit.speed), the other pass none."""
    plain = devices.TestDevice("cpu", plain=True).load(tiny_checkpoint)
    default = devices.TestDevice("cpu", plain=False).load(tiny_checkpoint)
    kinds = {type(m).__module__ for m in plain.modules()}
    assert not any(k.startswith("sam3kit.speed") for k in kinds)
    assert any(type(m).__module__.startswith("sam3kit.speed") for m in default.modules())


def test_to_device_moves_nested_records_and_keeps_their_types():
    transformers = pytest.importorskip("transformers")
    out = transformers.modeling_outputs.BaseModelOutput(last_hidden_state=torch.ones(2, 3),
                                                        hidden_states=(torch.zeros(1),))
    text = TextFeatures(features=torch.ones(1, 2, 4), padding_mask=torch.zeros(1, 2, dtype=torch.bool))
    moved = devices.to_device({"a": [torch.ones(1), (text, out)], "n": 3}, META)
    t, o = moved["a"][1]
    assert moved["n"] == 3 and moved["a"][0].is_meta and isinstance(moved["a"][1], tuple)
    assert type(t) is TextFeatures and t.features.is_meta and t.padding_mask.dtype == torch.bool
    assert type(o) is type(out) and o.last_hidden_state.is_meta and o.hidden_states[0].is_meta
    assert not text.features.is_meta  # the originals stay
