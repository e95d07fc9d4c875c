"""Reading checkpoints: Hugging Face directories, safetensors and official ``sam3.pt`` files; strict loading."""
