"""Pure tensor functions (boxes, masks, RLE, ROI-align), each tested against a plain reference."""
