"""Fixtures of the server tests: a tiny checkpoint whose random weights find something, the app on it (FastAPI's
test client) and a real uvicorn server on a free loopback port (helpers in ``server_support``)."""

from __future__ import annotations

import os

import pytest

import sam3kit
from sam3kit.testing import write_tokenizer_files
from sam3kit.weights.writer import save_hf

from server_support import BASE, LiveServer, biased_model

if not os.environ.get("CI"):  # in CI the test extra installs the server's packages: a missing one fails there
    pytest.importorskip("fastapi", reason="the server tests need the server extra (pip install -e '.[test]')")


@pytest.fixture(scope="session")
def server_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("server_sam3")
    model = biased_model(0)
    save_hf(model.state_dict(), model.config, folder)
    write_tokenizer_files(folder)
    return folder


@pytest.fixture(scope="session")
def server_model(server_checkpoint):
    return sam3kit.load(server_checkpoint)


@pytest.fixture
def make_client(server_model):
    """``make_client(**settings)`` -> a TestClient on a fresh app (its service closed at the end)."""
    from fastapi.testclient import TestClient

    from sam3kit.server import ServerSettings, create_app

    made = []

    def make(**settings):
        client = TestClient(create_app(server_model, ServerSettings(**settings), model_source="tiny"), base_url=BASE)
        client.__enter__()
        made.append(client)
        return client

    yield make
    for c in made:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def live_server(server_model):
    """``live_server(**settings)`` -> a started ``LiveServer`` (stopped at the end)."""
    from sam3kit.server import ServerSettings, create_app

    made = []

    def make(**settings):
        s = LiveServer(create_app(server_model, ServerSettings(**settings), model_source="tiny")).__enter__()
        made.append(s)
        return s

    yield make
    for s in made:
        s.__exit__(None, None, None)
