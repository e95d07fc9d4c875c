#!/usr/bin/env bash
# Download the wheels a GPU device run carries in .whl (git-ignored): what the device image lacks or holds in another
# version, for its Python 3.12 on x86-64 Linux. The image's own packages (torch, numpy, tokenizers, huggingface_hub,
# safetensors, scipy, pillow, pytest, ...) are used as they are. Run on the machine that calls the device tool.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  transformers==5.23.0 ftfy==6.3.1 wcwidth==0.9.4 pycocotools==2.0.11
ls -la .whl
