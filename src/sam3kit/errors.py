"""The exception types sam3kit raises for user mistakes. Every message says what was expected and how to fix it.

A message is one line; what would make it long (one line per missing or mis-shaped tensor of a checkpoint, the
text a library gave) is kept in ``details``, which the ``sam3kit`` command prints with ``-v``/``--debug``::

    try:
        model = sam3kit.load("ckpt/")
    except sam3kit.CheckpointError as e:
        print(e)                    # ckpt/model.safetensors (Hugging Face layout): the weights do not match
                                    # ckpt/config.json: tensors: 2 missing, 1 of the wrong shape (listed ...)
        print(*e.details, sep="\\n")  # missing: detector_model.detr_decoder.query_embed.weight, ...
"""

from __future__ import annotations

from collections.abc import Iterable


class Sam3Error(Exception):
    """Base class of every error sam3kit raises on purpose.

    Args:
        message: one line. A message of several lines keeps its first line; the others go to ``details``.
        details: further lines (each one line) behind the message, empty by default.
    """

    def __init__(self, message: str = "", *, details: Iterable[str] = ()) -> None:
        first, *rest = str(message).split("\n")
        lines = [line.rstrip() for line in rest if line.strip()] + [str(d) for d in details]
        super().__init__(first)
        self.details: tuple[str, ...] = tuple(line for d in lines for line in d.split("\n") if line.strip())

    @property
    def message(self) -> str:
        """The one-line message (``str(e)``)."""
        return self.args[0] if self.args else ""

    def full_text(self) -> str:
        """The message followed by the details, one per line (indented)."""
        return "\n".join([self.message, *("  " + d for d in self.details)])

    def __reduce__(self):  # keep the details through pickling (multiprocessing workers)
        return _rebuild, (type(self), self.message, self.details)


def _rebuild(cls, message: str, details: tuple[str, ...]) -> Sam3Error:
    return cls(message, details=details)


class CheckpointError(Sam3Error):
    """A checkpoint is missing, of another model, truncated, or does not match the configuration."""


class InputError(Sam3Error, ValueError):
    """A prompt, box, point, mask or option has the wrong type, shape or value."""


class ImageError(Sam3Error, ValueError):
    """An image file is missing, unreadable, corrupt, of an unsupported format, or too large."""


class OutputError(Sam3Error):
    """An output file exists already (pass overwrite/--force), or an output location cannot be written."""
