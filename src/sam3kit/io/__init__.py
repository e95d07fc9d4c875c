"""Image decoding and result writers. No model imports here."""
