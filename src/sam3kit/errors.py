"""The exception types sam3kit raises for user mistakes. Every message says what was expected and how to fix it."""


class Sam3Error(Exception):
    """Base class of every error sam3kit raises on purpose."""


class CheckpointError(Sam3Error):
    """A checkpoint is missing, of another model, truncated, or does not match the configuration."""


class InputError(Sam3Error, ValueError):
    """A prompt, box, point, mask or option has the wrong type, shape or value."""


class ImageError(Sam3Error, ValueError):
    """An image file is missing, unreadable, corrupt, of an unsupported format, or too large."""


class OutputError(Sam3Error):
    """An output file exists already (pass overwrite/--force), or an output location cannot be written."""
