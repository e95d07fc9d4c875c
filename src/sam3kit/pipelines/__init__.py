"""Predictors that wrap a model: preprocessing, the image encoding service (``encoding``), its cache, coordinate
transforms, prompts, post-processing."""
