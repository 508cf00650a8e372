"""What `pip install -e '.[cuda12]'` brings: CuPy *and* the CUDA libraries it loads at run time.

CuPy 14's wheels ship no CUDA libraries: on a machine with only the NVIDIA
driver, CuPy alone imports, then fails at the first random number (no cuRAND)
or custom kernel (no NVRTC). Its own "ctk" extra pulls the CUDA runtime
libraries from PyPI (cupy-cuda12x 14.2.0 lists: cuda-toolkit[cublas,cudart,
cufft,curand,cusolver,cusparse,nvrtc]==12.*; extra == "ctk").
"""
import configparser
import os
import re

from minicnn import backend

SETUP_CFG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.cfg")
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
