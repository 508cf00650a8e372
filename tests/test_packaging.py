"""What `pip install -e .` brings: the engine, importable from anywhere, and with '.[cuda12]' CuPy
*and* the CUDA libraries it loads at run time.

CuPy 14's wheels ship no CUDA libraries: on a machine with only the NVIDIA
driver, CuPy alone imports, then fails at the first random number (no cuRAND)
or custom kernel (no NVRTC). Its own "ctk" extra pulls the CUDA runtime
libraries from PyPI (cupy-cuda12x 14.2.0 lists: cuda-toolkit[cublas,cudart,
cufft,curand,cusolver,cusparse,nvrtc]==12.*; extra == "ctk").
"""
import configparser
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from minicnn import backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETUP_CFG = os.path.join(ROOT, "setup.cfg")
REQUIREMENT = re.compile(r"^(?P<name>[\w.-]+)(\[(?P<extras>[\w,\s-]+)\])?\s*(?P<version>.*)$")


def extras():
    config = configparser.ConfigParser()
    config.read(SETUP_CFG)
    return {name: [line.strip() for line in value.splitlines() if line.strip()]
            for name, value in config["options.extras_require"].items()}


def test_cuda_extras_install_cupy_with_its_cuda_runtime_libraries():
    for extra, wheel in (("cuda12", "cupy-cuda12x"), ("cuda13", "cupy-cuda13x")):
        (requirement,) = extras()[extra]
        match = REQUIREMENT.match(requirement)
        assert match and match["name"] == wheel, requirement
        assert "ctk" in {e.strip() for e in (match["extras"] or "").split(",")}, requirement
        assert match["version"] == ">=14.0", requirement  # CuPy 13 has no "ctk" extra


def test_the_install_hint_names_both_extras_and_what_the_machine_needs():
    hint = backend.GPU_INSTALL_HINT
    assert "pip install -e '.[cuda12]'" in hint and "pip install -e '.[cuda13]'" in hint
    assert "driver" in hint


def editable_install(clone, site_packages):
    """What `pip install -e clone` puts into site-packages, without pip: setuptools' editable wheel
    (PEP 660, the hook pip calls), unpacked into ``site_packages``."""
    wheels = os.path.join(os.path.dirname(clone), "wheels")
    build = "import sys\nfrom setuptools import build_meta\nprint(build_meta.build_editable(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", build, wheels], cwd=clone, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(os.path.join(wheels, result.stdout.splitlines()[-1])) as wheel:
        wheel.extractall(site_packages)


@pytest.mark.slow
def test_import_minicnn_from_the_folder_holding_the_clone_finds_the_installed_package(tmp_path):
    """A clone in a folder named minicnn, installed in editable mode: from the folder above it,
    Python meets that folder first (the current directory leads sys.path), as a namespace package
    without __init__.py. setup.cfg names the root as the package folder (`package_dir = .`), so
    setuptools puts the clone's root on sys.path (a .pth file), where the real package wins over the
    namespace one; without it a flat layout gets an import hook that runs only after the current
    directory has answered, with the empty folder."""
    clone = tmp_path / "minicnn"
    clone.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), clone)
    shutil.copytree(os.path.join(ROOT, "minicnn"), clone / "minicnn", ignore=shutil.ignore_patterns("__pycache__"))
    site_packages = tmp_path / "site-packages"
    editable_install(str(clone), str(site_packages))
    # -S -E: none of this interpreter's installed packages (its own minicnn among them), no PYTHONPATH;
    # the current directory still leads sys.path, as for any `python -c` or interactive session
    where = ("import importlib.util, site, sys\nsite.addsitedir(sys.argv[1])\n"
             "print(importlib.util.find_spec('minicnn').origin)")
    result = subprocess.run([sys.executable, "-S", "-E", "-c", where, str(site_packages)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(clone / "minicnn" / "__init__.py")
