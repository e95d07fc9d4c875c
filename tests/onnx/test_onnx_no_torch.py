"""``OnnxPredictor`` in a Python where ``import torch`` fails: it loads, encodes, segments and predicts, imports
only numpy, onnxruntime, tokenizers (with ftfy), Pillow and sam3kit's torch-free modules, and gives the same results
as in this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from sam3kit.onnx import OnnxPredictor

BLOCKER = '''
import sys


class _NoTorch:
    """Makes every import of torch fail, as on a machine without PyTorch."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"import of {name} is blocked: this Python has no PyTorch")
        return None


sys.meta_path.insert(0, _NoTorch())
'''

CHILD = '''
import json, sys
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("the blocker did not block torch")
import numpy as np
from sam3kit.onnx import OnnxPredictor
p = OnnxPredictor(sys.argv[1])
p.set_image(np.load(sys.argv[2]))
seg = p.segment(text="a dog", boxes=[[10, 10, 60, 50]], threshold=0.0, return_mask_logits=True)
pred = p.predict(points=[[30, 40]], box=[5, 5, 90, 80])
again = p.predict(mask_input=pred.low_res_logits[pred.best])
third_party = sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names) - {"sam3kit", "__main__"})
print(json.dumps({"torch": "torch" in sys.modules, "modules": third_party, "scores": seg.scores.tolist(),
                  "logits_sum": float(seg.mask_logits.astype("float64").sum()), "iou": pred.iou_scores.tolist(),
                  "masks": int(pred.masks.sum()), "again": int(again.masks.sum())}))
'''

ALLOWED = {"numpy", "onnxruntime", "tokenizers", "ftfy", "wcwidth", "PIL",
           "sitecustomize", "_distutils_hack"}  # the blocker itself; setuptools' .pth hook of this venv


def test_runs_without_torch(export_dir, image, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    np.save(tmp_path / "image.npy", image)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(export_dir), str(tmp_path / "image.npy")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["torch"] is False
    assert set(got["modules"]) <= ALLOWED, set(got["modules"]) - ALLOWED

    p = OnnxPredictor(export_dir)  # the same calls here (torch loaded) give the same numbers
    p.set_image(image)
    seg = p.segment(text="a dog", boxes=[[10, 10, 60, 50]], threshold=0.0, return_mask_logits=True)
    pred = p.predict(points=[[30, 40]], box=[5, 5, 90, 80])
    assert got["scores"] == seg.scores.tolist() and got["iou"] == pred.iou_scores.tolist()
    assert got["logits_sum"] == float(seg.mask_logits.astype("float64").sum())
    assert got["masks"] == int(pred.masks.sum())
    assert got["again"] == int(p.predict(mask_input=pred.low_res_logits[pred.best]).masks.sum())
