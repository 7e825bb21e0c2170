"""Dataset building, training, export and evaluation of the denoiser.

The TensorFlow environment is set here, before any submodule can import TensorFlow.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's pooling (BFC) allocator on the CPU: without it every step maps and unmaps
# its ~50 MB activations and much of the CPU time goes to page faults in the kernel
# (runs default-v2-nobfc and default-v2 in docs/training-report.md).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
