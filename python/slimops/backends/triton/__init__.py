"""Triton kernels (selected by the cuda backend, or on CPU under TRITON_INTERPRET=1)."""
