"""dse: design-space exploration for LLM inference infrastructure serving agentic workloads."""

import jax


# Performance models mix 1e15 FLOP/s with 1e-9 s terms; float32 loses the small ones.
jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
