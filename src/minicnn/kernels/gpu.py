"""CuPy kernels for the GPU (none yet: the plain versions run on CuPy as they are)."""
