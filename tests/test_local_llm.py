"""BOT_LLM_GGUF: llama.cpp (xllamacpp) started in the process, on 127.0.0.1, reached through ChatOpenAI like
any OpenAI-compatible server. A fake xllamacpp stands in here; the real model runs in `make test-llm`."""
from __future__ import annotations

import sys
import types

import pytest

from bot.answer import local_llm
from bot.answer.llm import LLMGenerator
from bot.answer.local_llm import LocalModelError, local_server
from bot.config import Settings


class FakeParams:
    def __init__(self):
        self.model = types.SimpleNamespace(path="")
        self.cpuparams = types.SimpleNamespace(n_threads=-1)
        self.cpuparams_batch = types.SimpleNamespace(n_threads=-1)
        self.hostnames, self.port, self.n_ctx = [], 0, 0


@pytest.fixture
def fake_llama(monkeypatch):
    started = []

    class Server:
        def __init__(self, params):
            if params.model.path.endswith("broken.gguf"):
                raise RuntimeError("failed to load model")
            started.append(params)
            self.listening_address = f"http://{params.hostnames[0]}:{params.port}"

    monkeypatch.setitem(sys.modules, "xllamacpp", types.SimpleNamespace(CommonParams=FakeParams, Server=Server))
    monkeypatch.setattr(local_llm, "_started", {})
    return started


def test_a_gguf_is_served_once_on_localhost_with_the_set_threads(fake_llama, tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    server = local_server(gguf, threads=1)
    [params] = fake_llama
    assert params.model.path == str(gguf.resolve()) and params.hostnames == ["127.0.0.1"]
    assert (params.cpuparams.n_threads, params.cpuparams_batch.n_threads) == (1, 1)
    assert server.base_url == f"http://127.0.0.1:{params.port}/v1" and server.model == "model.gguf"
    assert local_server(gguf, threads=1) is server and len(fake_llama) == 1  # one per process


def test_a_missing_or_broken_model_is_named(fake_llama, tmp_path):
    with pytest.raises(LocalModelError, match="names no file.*make llm-model"):
        local_server(tmp_path / "absent.gguf")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model")
    with pytest.raises(LocalModelError, match="could not load .*broken.gguf: failed to load model"):
        local_server(broken)


def test_the_llm_path_talks_to_the_local_server(fake_llama, tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    settings = Settings(llm_gguf=gguf, llm_threads=1)
    assert settings.llm_enabled
    generator = LLMGenerator(settings, index=None)
    assert generator.settings.llm_base_url == local_server(gguf).base_url
    assert generator.settings.llm_model == "model.gguf"
    assert str(generator.model.openai_api_base) == generator.settings.llm_base_url
