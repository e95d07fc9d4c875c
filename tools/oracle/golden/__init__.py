"""The golden-file generator of ``tools/oracle/make_golden_official.py``, one module per concern.

- ``builder``: the tiny official image model, its seeds and the weight randomisation;
- ``checkpoint``: the released ``sam3.pt`` layout (conversion, float16 copy, loading it back, key patterns);
- ``hf_config``: ``config.json`` in the Hugging Face format and the check that transformers loads it;
- ``inputs``: the test images and prompts; ``recording``: wrappers that record the official calls;
- one module per family of cases, each with ``FAMILIES`` (letter -> description and fields for ``meta.json``) and
  ``run(model, proc, imgs, cases)``, which adds its entries to the cases dict: ``backbone`` (a: preprocessing,
  b: backbone and necks), ``text`` (c: tokenizer and text features), ``detector`` (d: detector outputs and prompt
  tokens), ``postprocess`` (e: the official image post-processing of the d cases, recorded by ``detector``'s
  calls, so it has no ``run``), ``interactive`` (f: SAM-1-task predictions); ``cases`` runs them in that order;
- ``meta``: ``meta.json``;
- the video golden files (``tools/oracle/make_golden_video.py``, ``tests/golden/official_video/``): ``video_model``
  (the tiny model with a video-configured tracker, its flags and bias), ``video_inputs`` (the synthetic clip),
  ``video_tracker`` (driving the official ``Sam3TrackerPredictor`` and recording its control flow), ``video_cases``
  and ``video_meta``.

A new family (e.g. video cases) is a new module with the same two names, added to ``cases.FAMILY_MODULES`` and
called in ``cases.run_cases``.

``sam3_cpu_env`` is imported first, before any ``sam3`` module: it is not part of this project but of the oracle
environment (a folder outside the repository, put on ``PYTHONPATH``) and holds CPU shims for the official package
(a triton stub, CUDA allocations at construction moved to the CPU, a no-op ``pin_memory``) and the path of the CLIP
BPE vocabulary.
"""
import sam3_cpu_env as E  # noqa: F401  (CPU shims: must be imported before any sam3 module)
