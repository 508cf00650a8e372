"""python -m minicnn.doctor: versions everywhere; with --device gpu, the GPU path checked against the CPU."""
import pytest

from minicnn import doctor
from helpers import fast_form_replaced

SMALL = ["--model", "models.googlenet:GoogLeNet", "--loss", "models.googlenet:googlenet_loss", "--width", "0.0625",
         "--check-width", "0.0625", "--batch-size", "2", "--steps", "1"]


def test_without_a_device_it_prints_the_versions(capsys):
    assert doctor.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("minicnn ") and "NumPy " in out and "numba " in out and "CuPy" in out


@pytest.mark.gpu
def test_on_the_gpu_every_check_passes(capsys):
    assert doctor.main(["--device", "gpu", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "cases passed" in out and "FAIL" not in out
    assert "(pass: < 1e-8)" in out and "images/s" in out and out.rstrip().endswith("all checks passed")


@pytest.mark.gpu
def test_without_a_model_it_checks_the_layers_and_lists_the_fast_gpu_forms(capsys):
    assert doctor.main(["--device", "gpu"]) == 0
    out = capsys.readouterr().out
    assert "cases passed" in out and "images/s" not in out and out.rstrip().endswith("all checks passed")
    table = out[out.index("== 2."):].split("\n\n")[0].splitlines()[1:]  # one row per op: name, form, status
    rows = [line.split() for line in table]
    statuses = {row[0]: " ".join(row[2:]) for row in rows}
    assert statuses["im2col"] == statuses["lrn"] == statuses["sgd_update"] == statuses["adam_update"] == "active"
    assert set(statuses.values()) == {"active"}


@pytest.mark.gpu
def test_a_gpu_path_that_differs_from_the_cpu_fails(capsys):
    from minicnn.functional.conv import im2col_forms
    from minicnn.kernels.conv import im2col_gather  # the CPU runs the numba kernel, the GPU this gather

    def slightly_wrong(x, *args):
        return im2col_gather(x, *args) * 1.001

    with fast_form_replaced(im2col_forms, "gpu", slightly_wrong):
        assert doctor.main(["--device", "gpu", *SMALL]) == 1
    out = capsys.readouterr().out
    assert "(FAIL: < 1e-8)" in out and "FAILED: gradient checks, GPU against CPU" in out


def test_a_cpu_device_is_refused(capsys):
    assert doctor.main(["--device", "cpu"]) == 2
    assert "--device must be gpu or gpu:N, got cpu" in capsys.readouterr().err


def test_without_cupy_the_reason_is_said_once(capsys, without_cupy):
    assert doctor.main(["--device", "gpu"]) == 2
    out, err = capsys.readouterr()
    assert out.count("pip install -e '.[cuda12]'") == 1 and "pip install" not in err
    assert err == "error: --device gpu cannot be checked (see above)\n"


def test_it_names_the_kernels_numpys_openblas_runs_and_who_chose_them():
    """OpenBLAS picks its kernels as NumPy loads it, unless OPENBLAS_CORETYPE names them: the doctor says
    which, and why (here in fresh processes, with the variable unset and then naming what OpenBLAS chose)."""
    import os
    import subprocess
    import sys

    def blas_line(**settings):
        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        code = "from minicnn.doctor import blas_line; print(blas_line())"
        return subprocess.run([sys.executable, "-c", code], env={**env, **settings}, capture_output=True,
                              text=True, check=True).stdout.strip()

    chosen = blas_line()
    assert not chosen.startswith("BLAS: not OpenBLAS"), chosen  # NumPy's wheels for Linux ship OpenBLAS
    kernels = chosen.removeprefix("BLAS: OpenBLAS on its ").split(" kernels")[0]
    assert chosen == f"BLAS: OpenBLAS on its {kernels} kernels (chosen by OpenBLAS for this CPU)"
    assert blas_line(OPENBLAS_CORETYPE=kernels) == (f"BLAS: OpenBLAS on its {kernels} kernels "
                                                    f"(OPENBLAS_CORETYPE={kernels} is set)")
