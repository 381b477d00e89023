"""A PEP 517 build backend from the standard library alone, for ``pip install ./clients/python``.

Why not setuptools: pip builds in an isolated environment and would download setuptools into
it first, which fails offline; ``--no-build-isolation`` fails too where setuptools is older than
70.1 without the ``wheel`` package (Python 3.11's bundled setuptools 65) or absent (Python
3.12's venvs). This backend has no requirements, so pip needs nothing from an index.

It builds a pure-Python wheel of the ``runstate`` package with the metadata in pyproject.toml's
``[project]`` table, an editable wheel (PEP 660: a .pth file pointing at this folder), and an
sdist.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "runstate"
# Zip entries need a date: SOURCE_DATE_EPOCH for reproducible builds, else 1980-01-01.
_EPOCH = max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)
_DATE = time.gmtime(_EPOCH)[:6]


def read_project(text: Optional[str] = None) -> Dict[str, Any]:
    """pyproject.toml's [project] table (tomllib where there is one, else the simple subset
    this file uses: strings, and lists of strings)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8") if text is None else text
    try:
        import tomllib  # Python 3.11+

        return dict(tomllib.loads(text)["project"])
    except ImportError:
        pass
    project: Dict[str, Any] = {}
    section = None
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = re.fullmatch(r"\[([^\]]+)\]", line)
        if header:
            section = header.group(1).strip()
            continue
        if section != "project" or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if value.startswith("["):
            while not value.endswith("]"):
                value += " " + next(lines).strip()
            project[key] = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
        else:
            project[key] = value.strip('"')
    return project


def _names() -> Tuple[str, str, str]:
    project = read_project()
    name, version = project["name"], project["version"]
    return name, version, re.sub(r"[-_.]+", "_", name).lower()


def _metadata() -> str:
    project = read_project()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
    ]
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    lines += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    readme = project.get("readme")
    body = ""
    if isinstance(readme, str) and (ROOT / readme).is_file():
        lines.append("Description-Content-Type: text/markdown")
        body = (ROOT / readme).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n\n" + body


def _package_files() -> List[Path]:
    files = []
    for path in sorted((ROOT / PACKAGE).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append(path)
    return files


def _dist_info(dist: str, version: str) -> Dict[str, bytes]:
    return {
        f"{dist}-{version}.dist-info/METADATA": _metadata().encode("utf-8"),
        f"{dist}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: runstate_build_backend\n"
            "Root-Is-Purelib: true\nTag: py3-none-any\n"
        ).encode(),
        f"{dist}-{version}.dist-info/top_level.txt": f"{PACKAGE}\n".encode(),
    }


def _write_wheel(directory: str, entries: Dict[str, bytes]) -> str:
    _, version, dist = _names()
    filename = f"{dist}-{version}-py3-none-any.whl"
    record_name = f"{dist}-{version}.dist-info/RECORD"
    records = []
    with zipfile.ZipFile(os.path.join(directory, filename), "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{name},sha256={digest},{len(data)}")
        records.append(f"{record_name},,")
        info = zipfile.ZipInfo(record_name, date_time=_DATE)
        info.external_attr = 0o644 << 16
        wheel.writestr(info, "\n".join(records) + "\n")
    return filename


def _write_metadata(metadata_directory: str) -> str:
    _, version, dist = _names()
    for name, data in _dist_info(dist, version).items():
        path = Path(metadata_directory, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return f"{dist}-{version}.dist-info"


# PEP 517


def get_requires_for_build_wheel(config_settings: Any = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Any = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Any = None) -> str:
    return _write_metadata(metadata_directory)


def build_wheel(wheel_directory: str, config_settings: Any = None, metadata_directory: Any = None) -> str:
    _, version, dist = _names()
    entries = {path.relative_to(ROOT).as_posix(): path.read_bytes() for path in _package_files()}
    entries.update(_dist_info(dist, version))
    return _write_wheel(wheel_directory, entries)


def build_sdist(sdist_directory: str, config_settings: Any = None) -> str:
    _, version, dist = _names()
    base = f"{dist}-{version}"
    files = [ROOT / "pyproject.toml", ROOT / "README.md", Path(__file__).resolve()]
    files += _package_files()
    filename = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as sdist:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{base}/{name}")
            info.size, info.mtime, info.mode = len(data), _EPOCH, 0o644
            sdist.addfile(info, io.BytesIO(data))

        for path in files:
            add(path.relative_to(ROOT).as_posix(), path.read_bytes())
        add("PKG-INFO", _metadata().encode("utf-8"))
    return filename


# PEP 660: `pip install -e ./clients/python` imports the package from this folder.


def get_requires_for_build_editable(config_settings: Any = None) -> List[str]:
    return []


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: Any = None) -> str:
    return _write_metadata(metadata_directory)


def build_editable(wheel_directory: str, config_settings: Any = None, metadata_directory: Any = None) -> str:
    _, version, dist = _names()
    entries = {f"__editable__.{dist}.pth": f"{ROOT}\n".encode("utf-8")}
    entries.update(_dist_info(dist, version))
    return _write_wheel(wheel_directory, entries)
