"""Predictors that wrap a model: preprocessing, cached image features, prompts, post-processing."""
