"""Real CuPy, no GPU: every kernel a GPU run launches is generated and NVRTC-compiled, for sm_90 and sm_80.

``python -m tests.fakecuda.probe`` runs minicnn's GPU path (the trainer's step,
both norms, the optimizers, an evaluation batch, the gradient-check cases in
float64, the all-reduce's packing) on real CuPy over a fake CUDA device
(tests/fakecuda), once per architecture per session, in a process of its own
(real CuPy and the CuPy stand-in cannot share one). Kernels are compiled, never
run, so these tests check structure, never values: the stand-in checks values.

The last test makes NVRTC fail on one fused kernel and sees the op fall back
to its plain form (minicnn.kernels.dispatch). They need real CuPy (the
``fakecuda`` extra, which ``.ci/run`` installs) and skip where it is not
installed.
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The budget of issue 9: PyTorch eager's launches per training step of the same network (batch 2).
STEP_BUDGET = {"bn": 1260, "lrn": 965}
TRAINING_PHASES = ("train_bn", "step_bn", "step_lrn", "adam")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("cupy_backends") is None,
                                reason="needs real CuPy (pip install 'cupy-cuda12x[ctk]'; .ci/run installs it)")


def run_probe(capability, cache_dir, *options):
    """The probe's JSON for a fake device of ``capability``; its kernels cached in ``cache_dir``."""
    out = os.path.join(cache_dir, f"probe-{capability}{''.join(options)}.json")
    env = dict(os.environ, CUPY_CACHE_DIR=cache_dir, CUPY_TF32="0")
    result = subprocess.run([sys.executable, "-m", "tests.fakecuda.probe", "--capability", capability,
                             "--json", out, *options], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f"the probe failed (a kernel did not compile?):\n{result.stderr[-6000:]}"
    with open(out) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def kernel_cache(tmp_path_factory):
    """One CuPy kernel cache per session: each distinct kernel is compiled once."""
    return str(tmp_path_factory.mktemp("cupy-kernel-cache"))


@pytest.fixture(scope="session", params=["9.0", "8.0"], ids=["sm_90", "sm_80"])
def probe(request, kernel_cache):
    return run_probe(request.param, kernel_cache)


def all_kernels(probe):
    return {name for phase in probe["phases"].values() for name in phase["kernels"]}


def test_every_kernel_compiles_to_a_cubin_for_the_devices_architecture(probe):
    arch = int(probe["capability"].replace(".", ""))
    assert probe["errors"] == []  # no CUDA call that the fake does not know
    assert [arch for arch, _ in probe["module_archs"]] == [arch]  # real cubins (ELF), all for this SM
    assert sum(count for _, count in probe["module_archs"]) > 100


def test_no_fused_kernel_falls_back_to_the_experimental_fusion(probe):
    assert probe["fusion_fallbacks"] == []


def test_every_fused_kernel_is_launched_by_some_phase(probe):
    """The phases drive the public API: a fused kernel none of them reaches is one a new test must reach."""
    assert len(probe["fused_kernels"]) >= 20
    assert set(probe["fused_kernels"]) <= all_kernels(probe)


@pytest.mark.parametrize("phase", TRAINING_PHASES)
def test_a_training_step_reads_nothing_back_and_uploads_nothing(probe, phase):
    counts, copies = probe["phases"][phase]["counts"], probe["phases"][phase]["copies"]
    assert counts.get("device_to_host", 0) == 0 and counts.get("synchronize", 0) == 0, copies
    assert counts.get("host_to_device", 0) == 0, copies


def test_evaluation_reads_only_its_final_totals(probe):
    """train.cifar.evaluate reads the running totals once, at the end (loss, hits, count)."""
    evaluate = probe["phases"]["evaluate"]
    assert evaluate["counts"].get("device_to_host", 0) == 3, evaluate["copies"]
    assert all(site.startswith(f"device_to_host at {os.path.join('train', 'metrics.py')}:")
               for site in evaluate["copies"]), evaluate["copies"]


@pytest.mark.parametrize("norm", ["bn", "lrn"])
def test_launches_per_training_step_stay_within_the_budget(probe, norm):
    """Kernel launches + cuBLAS, cuRAND and CUB calls + memsets of one steady-state step (batch 2)."""
    counts = probe["phases"][f"step_{norm}"]["counts"]
    assert 500 < counts["total"] <= STEP_BUDGET[norm], counts


def test_matrix_products_go_to_cublas_in_the_step_dtype(probe):
    """float32 products in the training step, float64 ones in the gradient-check cases (stubs: shapes and
    dtypes recorded, nothing computed)."""
    step, cases = probe["phases"]["step_bn"]["library"], probe["phases"]["gradcheck"]["library"]
    products = lambda calls, dtype: sum(n for name, n in calls.items() if name.startswith("cublas.") and  # noqa
                                        name.endswith(dtype))
    assert products(step, "float32") > 50 and products(step, "float64") == 0
    assert products(cases, "float64") > 10 and products(cases, "float32") == 0


def test_a_fused_kernel_nvrtc_fails_to_compile_falls_back_to_its_plain_twin(tmp_path):
    """NVRTC refuses the SGD kernel (as another CUDA might): the op warns once and runs its plain form, and
    both steps complete. A cache of its own, so that NVRTC is asked (a cached cubin would skip it)."""
    result = run_probe("9.0", str(tmp_path), "--nvrtc-fails-for", "_sgd_nesterov")
    fallbacks = [w for w in result["warnings"] if w.startswith("FastFormWarning")]
    assert len(fallbacks) == 1 and "sgd_update" in fallbacks[0] and "CompileException" in fallbacks[0]
    step = result["phases"]["step_bn"]
    assert "_sgd_nesterov" not in step["kernels"]  # the plain update's kernels ran instead
    assert 500 < step["counts"]["total"] <= STEP_BUDGET["bn"] and result["errors"] == []


@pytest.mark.gpu
@pytest.mark.parametrize("norm", ["bn", "lrn"])
def test_the_stand_ins_model_of_a_step_counts_what_real_cupy_launches(probe, norm):
    """The stand-in's device operations of the same step (its model of CuPy, per call) against real CuPy's
    launches + library calls + memsets: the same total."""
    from benchmarks.googlenet import device_ops_per_step, minicnn_steps
    from helpers import on_cupy_standin
    if not on_cupy_standin():
        pytest.skip("counts need the CuPy stand-in (on a GPU the main process runs real CuPy)")
    net = minicnn_steps(norm, "gpu", batch=2, width=1 / 8)
    net.train_step()
    assert device_ops_per_step(net.train_step)["device_ops"] == probe["phases"][f"step_{norm}"]["counts"]["total"]
