"""The server's optional dependencies (the ``server`` extra): a clear error naming the extra when one is missing."""

from __future__ import annotations

from ..errors import Sam3Error

SERVER_EXTRA = "pip install 'sam3kit[server]'"
MODULES = (("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("python_multipart", "python-multipart"))


class MissingExtra(Sam3Error, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require_server_extra() -> None:
    """Raise ``MissingExtra`` unless FastAPI, uvicorn and python-multipart can be imported."""
    import importlib

    missing = []
    for module, package in MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            if module == "python_multipart":  # versions before 0.0.13 install the module "multipart"
                try:
                    importlib.import_module("multipart.multipart")
                    continue
                except ImportError:
                    pass
            missing.append(package)
    if missing:
        raise MissingExtra(f"the server needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                           f"not installed: {SERVER_EXTRA}")
