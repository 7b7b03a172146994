"""The package `import tomograph` as it will be installed, assembled in a folder from
python/tomograph/ and the extension a build made (<build>/.libs): for tests/python/run and
the benchmarks (bench/binding.py)."""

import glob
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def extension(build):
    """The extension built in build/.libs, or None."""
    found = glob.glob(str(Path(build) / ".libs" / "_tomograph*.so"))
    return found[0] if found else None


def assemble(build, work):
    """Makes work/tomograph from the sources and build's extension (which must exist)."""
    package = Path(work) / "tomograph"
    shutil.copytree(REPO_ROOT / "python" / "tomograph", package,
                    ignore=shutil.ignore_patterns("*.c", "__pycache__"))
    shutil.copy(extension(build), package)
    return package
