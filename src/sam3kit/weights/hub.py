"""Resolve a Hugging Face Hub id (``facebook/sam3``) to a local directory, with errors that say what to do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ..errors import CheckpointError

HUB_PATTERNS = ["config.json", "model.safetensors", "model.safetensors.index.json", "model-*.safetensors",
                "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def looks_like_hub_id(source: str) -> bool:
    return bool(_HUB_ID.match(source)) and not Path(source).exists()


def download(repo_id: str, *, revision: Optional[str] = None, token: Optional[str] = None) -> Path:
    """Download (or find in the local cache) the files sam3kit needs; the token comes from the usual places
    (``HF_TOKEN``, ``hf auth login``) unless given."""
    try:
        import huggingface_hub
        from huggingface_hub import errors as hf_errors
    except ImportError as e:  # a core dependency; only a broken install gets here
        raise CheckpointError("huggingface_hub is not installed: pip install huggingface_hub") from e
    try:
        path = huggingface_hub.snapshot_download(repo_id, revision=revision, token=token, allow_patterns=HUB_PATTERNS)
    except hf_errors.GatedRepoError as e:
        raise CheckpointError(
            f"{repo_id} is gated: accept its license on https://huggingface.co/{repo_id} with your account, then log "
            "in with `hf auth login` or set HF_TOKEN.") from e
    except hf_errors.RepositoryNotFoundError as e:
        raise CheckpointError(
            f"{repo_id} was not found on the Hugging Face Hub (or it is private and you are not logged in). "
            "Check the id, or log in with `hf auth login` / HF_TOKEN.") from e
    except hf_errors.RevisionNotFoundError as e:
        raise CheckpointError(f"{repo_id} has no revision {revision!r}") from e
    except (hf_errors.LocalEntryNotFoundError, OSError) as e:
        raise CheckpointError(
            f"could not download {repo_id}: the Hugging Face Hub is unreachable and the files are not in the local "
            f"cache ({type(e).__name__}). Connect to the internet, or download the repository elsewhere "
            f"(`hf download {repo_id}`) and pass its directory instead.") from e
    return Path(path)
