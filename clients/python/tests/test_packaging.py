"""`pip install ./clients/python` works with no package index: the build needs nothing but pip."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "_build_backend"))
import runstate_build_backend as backend  # noqa: E402

sys.path.remove(str(HERE / "_build_backend"))


class PackagingTest(unittest.TestCase):
    def test_the_wheel_holds_the_package_and_a_valid_record(self) -> None:
        with tempfile.TemporaryDirectory() as out:
            name = backend.build_wheel(out)
            self.assertEqual(name, "runstate_client-0.1.0-py3-none-any.whl")
            with zipfile.ZipFile(os.path.join(out, name)) as wheel:
                names = wheel.namelist()
                self.assertIn("runstate/__init__.py", names)
                self.assertIn("runstate/py.typed", names)
                self.assertFalse([n for n in names if "__pycache__" in n or n.startswith("tests/")])
                metadata = wheel.read("runstate_client-0.1.0.dist-info/METADATA").decode()
                self.assertIn("Name: runstate-client", metadata)
                self.assertIn("Requires-Python: >=3.9", metadata)
                self.assertNotIn("Requires-Dist", metadata)  # the standard library only
                record = wheel.read("runstate_client-0.1.0.dist-info/RECORD").decode().splitlines()
                for line in record:
                    path, digest, size = line.rsplit(",", 2)
                    if path.endswith("RECORD"):
                        continue
                    data = wheel.read(path)
                    expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                    self.assertEqual((digest, int(size)), (f"sha256={expected}", len(data)), path)
            sdist = backend.build_sdist(out)
            with tarfile.open(os.path.join(out, sdist)) as archive:
                members = archive.getnames()
            self.assertIn("runstate_client-0.1.0/pyproject.toml", members)
            self.assertIn("runstate_client-0.1.0/_build_backend/runstate_build_backend.py", members)
            self.assertIn("runstate_client-0.1.0/PKG-INFO", members)

    @unittest.skipIf(sys.version_info < (3, 11), "tomllib, to compare with, arrived in Python 3.11")
    def test_the_fallback_reading_of_pyproject_matches_tomllib(self) -> None:
        text = (HERE / "pyproject.toml").read_text()
        real = backend.read_project(text)
        saved = sys.modules.get("tomllib")
        sys.modules["tomllib"] = None  # type: ignore[assignment]  # as on Python 3.9 and 3.10
        try:
            fallback = backend.read_project(text)
        finally:
            sys.modules["tomllib"] = saved  # type: ignore[assignment]
        self.assertEqual(fallback, real)

    @unittest.skipIf(importlib.util.find_spec("pip") is None, "this Python has no pip to install with")
    def test_pip_installs_it_without_any_index(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        with tempfile.TemporaryDirectory() as target:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--target", target, str(HERE)],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            found = subprocess.run(
                [sys.executable, "-c", "import runstate; print(runstate.__file__, runstate.__version__)"],
                cwd=target,
                capture_output=True,
                text=True,
                timeout=60,
            )
            self.assertEqual(found.returncode, 0, found.stderr)
            self.assertEqual(found.stdout.split(), [os.path.join(target, "runstate", "__init__.py"), "0.1.0"])
        self.assertFalse([p.name for p in HERE.iterdir() if p.name in ("build", "dist") or p.name.endswith(".egg-info")])


if __name__ == "__main__":
    unittest.main()
