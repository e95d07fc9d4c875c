"""The short table of a GPU run: one line per record of ``results.jsonl`` (``benchmarks/gpu/run.sh`` prints it last).

    python benchmarks/gpu/summary.py RESULTS.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _ms(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _accuracy(acc: dict) -> str:
    """The comparisons against transformers and against sam3kit fp32, shortest names first."""
    keep = [(k, v) for k, v in acc.items() if isinstance(v, (int, float)) and ("_vs_" in k or "objects" in k)]
    return "; ".join(f"{k.replace('_max_abs_diff', ' diff').replace('_vs_', ' vs ')} {v:.3g}" for k, v in keep[:3])


def lines(records: list[dict]) -> list[str]:
    out = [f"{'record':24s} {'dtype':8s} {'sam3kit ms':>11s} {'transf. ms':>11s} {'ratio':>6s} {'GPU MiB':>9s}  "
           "target / accuracy"]
    for r in records:
        b = r.get("bench", "?")
        if b.startswith("gpu_") and b != "gpu_summary":
            m = r["median_ms"]
            ours = m.get("sam3kit", m.get("sam3kit-predictor"))
            peak = r.get("peak_gpu_mib", {}).get("sam3kit")
            tgt = r.get("target")
            t = "" if not tgt else ("MET " if tgt["met"] else "MISSED ") + (
                f"<= {tgt['ratio_at_most']}x" if "ratio_at_most" in tgt else f"<= {tgt['seconds_at_most'] * 1e3:.0f} ms")
            ratio = r["ratios"].get("sam3kit")
            out.append(f"{b:24s} {r['dtype']:8s} {_ms(ours):>11s} {_ms(m.get('transformers')):>11s} "
                       f"{'-' if ratio is None else f'{ratio:.2f}':>6s} {_ms(peak):>9s}  {t} {_accuracy(r['accuracy'])}")
            for k, v in m.items():
                if k not in ("sam3kit", "transformers", "sam3kit-predictor"):
                    extra = f" (compile {r['compile_s'][k]} s)" if k in r.get("compile_s", {}) else ""
                    out.append(f"{'':24s} {'':8s} {k}: {v:.2f} ms{extra}")
            for k, v in r.get("compile_failed", {}).items():
                out.append(f"{'':24s} {'':8s} {k} did not compile: {v[:120]}")
        elif b in ("f_video_tracking", "g_video_concepts"):
            for name, t in r["timings"].items():
                if not name.startswith("sam3kit"):
                    continue
                ref = r["timings"].get("transformers_" + name.split("_", 1)[1])
                ratio = t["median_s"] / ref["median_s"] if ref else None
                out.append(f"{b + ' ' + name:24s} {r['dtype']:8s} {t['median_s'] * 1e3:>11.2f} "
                           f"{_ms(ref['median_s'] * 1e3 if ref else None):>11s} "
                           f"{'-' if ratio is None else f'{ratio:.2f}':>6s} {_ms(r.get('peak_gpu_mib')):>9s}  per frame")
        elif b == "gpu_summary":
            out.append(f"gpu_summary: {r['rows']} records in {r['wall_s']} s; skipped {r['skipped'] or 'none'}")
    return out


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python benchmarks/gpu/summary.py RESULTS.jsonl")
    path = Path(argv[0])
    if not path.is_file():
        raise SystemExit(f"summary: {path} does not exist (no benchmark wrote a record)")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print("\n".join(lines(records)))


if __name__ == "__main__":
    main()
