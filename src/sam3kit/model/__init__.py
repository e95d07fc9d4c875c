"""Stateless ``nn.Module``s: tensors in, tensors out. No I/O, thresholds or sessions here."""
