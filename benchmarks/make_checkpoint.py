"""Write a random-weight checkpoint in the facebook/sam3 layout (config.json + model.safetensors) for the load and
memory benchmarks: ``python benchmarks/make_checkpoint.py [--config released|tiny] [--dir .bench/sam3-random]``.
Speed does not depend on the weight values. Never commit the result (``/.bench/`` is git-ignored)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def make(config_name: str, directory: Path, seed: int = 0) -> Path:
    from sam3kit.weights.writer import save_hf

    weights = directory / "model.safetensors"
    if weights.is_file() and (directory / "config.json").is_file():
        return directory
    model = common.random_model(common.config(config_name), seed)
    save_hf(model.state_dict(), model.config, directory)
    return directory


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", choices=("released", "tiny"), default="released")
    p.add_argument("--dir", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    d = a.dir or common.BENCH_DIR / f"sam3-random-{a.config}"
    t0 = time.perf_counter()
    make(a.config, d, a.seed)
    print(f"{d} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
