"""numba kernels for the CPU (filled in as the hot paths get fast versions)."""
