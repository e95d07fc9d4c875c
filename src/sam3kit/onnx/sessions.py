"""ONNX Runtime sessions of exported graphs, each checked against its contract, with checked inputs.

``GraphSession(path, spec, ...)`` opens one graph and compares the session's inputs and outputs with the contract
(``contract.GraphSpec``): a graph of another model, another export or another kind is refused with the first
difference, naming the file. ``run(feeds)`` checks every input's dtype, rank and fixed sizes first, so a wrong shape
is an ``InputError`` naming the graph, the input and what was expected, not an ONNX Runtime traceback. No PyTorch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import CheckpointError, InputError
from .contract import GraphSpec, TensorSpec

_ORT_TYPES = {"float32": "tensor(float)", "int64": "tensor(int64)", "bool": "tensor(bool)"}
_NUMPY_TYPES = {"float32": np.float32, "int64": np.int64, "bool": np.bool_}


def onnxruntime():
    """The ``onnxruntime`` module, or an ImportError that names the extra to install."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ImportError("the ONNX runtime of sam3kit needs onnxruntime: pip install 'sam3kit[onnx]' (or "
                          "onnxruntime-gpu for CUDA)") from e
    return ort


def resolve_providers(providers: Optional[Sequence[str]]) -> list[str]:
    """``providers`` checked against this onnxruntime build; None = the CPU provider."""
    ort = onnxruntime()
    available = ort.get_available_providers()
    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        providers = [providers]
    unknown = [p for p in providers if (p[0] if isinstance(p, tuple) else p) not in available]
    if unknown or not providers:
        raise InputError(f"execution providers {list(unknown) or providers} are not available in this onnxruntime "
                         f"build; available: {', '.join(available)}")
    return list(providers)


class GraphSession:
    """One graph's ONNX Runtime session.

    Args:
        path: the .onnx file (checked by ``Manifest.graph_file``).
        spec: its contract.
        providers: execution providers (``resolve_providers``).
        threads: intra-op threads; None = ONNX Runtime's choice (one per core).
    """

    def __init__(self, path: Path, spec: GraphSpec, providers: list, threads: Optional[int] = None) -> None:
        ort = onnxruntime()
        so = session_options(threads)
        self.path, self.spec = Path(path), spec
        try:
            self.session = ort.InferenceSession(str(path), so, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types for unreadable or invalid graphs
            raise CheckpointError(f"{path}: ONNX Runtime cannot open this graph: {str(e).splitlines()[0]}") from e
        self._check_interface()

    def _check_interface(self) -> None:
        s = self.session
        got_in = {a.name: a for a in s.get_inputs()}
        got_opt = {a.name: a for a in s.get_overridable_initializers()}
        got_out = {a.name: a for a in s.get_outputs()}
        for kind, specs, got in (("input", self.spec.inputs, got_in), ("output", self.spec.outputs, got_out),
                                 ("optional input", self.spec.optional_inputs, got_opt)):
            want = [t.name for t in specs]
            missing = [n for n in want if n not in got]
            extra = sorted(set(got) - set(want)) if kind != "optional input" else []
            if missing or extra:
                raise CheckpointError(
                    f"{self.path}: {kind}s {sorted(got)} do not match the {self.spec.name} graph's {want} "
                    f"(missing {missing}, unexpected {extra}): is this file the {self.spec.name} of this export?")
            for t in specs:
                _check_arg(self.path, kind, got[t.name], t)

    def run(self, feeds: dict[str, np.ndarray], outputs: Optional[Sequence[str]] = None) -> dict[str, np.ndarray]:
        """Run with ``feeds`` (name -> array; optional inputs may be left out); returns name -> array."""
        specs = {t.name: t for t in self.spec.inputs + self.spec.optional_inputs}
        for t in self.spec.inputs:
            if t.name not in feeds:
                raise InputError(f"{self.spec.name}: input {t.describe()} is missing")
        sizes: dict[str, int] = {}
        for name, value in feeds.items():
            t = specs.get(name)
            if t is None:
                raise InputError(f"{self.spec.name}: unknown input {name!r}; inputs are {sorted(specs)}")
            check_feed(self.spec.name, t, value, sizes)
        names = list(outputs) if outputs is not None else [t.name for t in self.spec.outputs]
        values = self.session.run(names, feeds)
        return dict(zip(names, values))


def session_options(threads: Optional[int] = None):
    """``onnxruntime.SessionOptions`` for a graph of this package: errors-only logging, every graph optimisation,
    ``threads`` intra-op threads (None: ONNX Runtime's choice), and the process's global thread pool when one
    exists (ONNX Runtime refuses per-session pools then)."""
    ort = onnxruntime()
    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only: its warnings (constant folding, overridable inputs) are expected
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if _global_thread_pool():
        so.use_per_session_threads = False
    elif threads is not None:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    return so


def _global_thread_pool() -> bool:
    """Whether this process's ONNX Runtime environment has a global thread pool: ``sam3kit.speed.quantize_int8``
    creates one for its per-layer sessions (looked up without importing that module, which needs torch)."""
    import sys

    int8 = sys.modules.get("sam3kit.speed.int8")
    return bool(getattr(int8, "_SHARED_ENV", False))


def check_feed(graph: str, spec: TensorSpec, value: np.ndarray, sizes: dict[str, int]) -> None:
    """``InputError`` unless ``value`` has the dtype, rank and fixed sizes of ``spec`` and the same size as the
    other inputs on the shared "batch" axis."""
    if not isinstance(value, np.ndarray) or value.dtype != _NUMPY_TYPES[spec.dtype]:
        got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise InputError(f"{graph}: input {spec.name} must be a numpy {spec.dtype} array, got {got}")
    ok = value.ndim == len(spec.dims) and all(isinstance(d, str) or d == n for d, n in zip(spec.dims, value.shape))
    if not ok:
        raise InputError(f"{graph}: input {spec.name} has shape {list(value.shape)}, expected {spec.describe()}")
    if spec.dims and spec.dims[0] == "batch":
        b = sizes.setdefault("batch", value.shape[0])
        if value.shape[0] != b:
            raise InputError(f"{graph}: input {spec.name} has batch {value.shape[0]}, the other inputs {b}")


def _check_arg(path: Path, kind: str, arg, spec: TensorSpec) -> None:
    """An ONNX Runtime NodeArg against its contract: type, rank, every fixed size, no fixed size where the contract
    has a dynamic axis."""
    shape = list(arg.shape)
    ok = arg.type == _ORT_TYPES[spec.dtype] and len(shape) == len(spec.dims) and all(
        (g == w) if isinstance(w, int) else not isinstance(g, int) for g, w in zip(shape, spec.dims))
    if not ok:
        raise CheckpointError(f"{path}: {kind} {arg.name} is {arg.type} {shape}, expected {spec.describe()} "
                              "(the sizes of the model this export's manifest.json describes)")
