"""Transformer architectures: the numbers a performance model needs, and their parameter counts.

An :class:`Architecture` is a small pytree of float arrays (so it can be stacked and vmapped
alongside hardware and designs). It is built from a ``conf/model/*.yaml`` entry, whose fields
mirror the Hugging Face ``config.json`` of the model (names kept close to HF's for checking).

Parameter counts here are exact sums over the weight tensors of the checkpoint (biases and norms
included), so they can be tested against the published totals (``tests/catalog``).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from .fields import arrays_from_mapping

# Numeric fields of a model YAML (``architecture:`` mapping) and their defaults.
# Every field is a float so that architectures stack into one pytree of arrays.
ARCH_FIELDS: dict[str, float] = {
    "hidden_size": 0.0,
    "num_layers": 0.0,
    "num_attention_heads": 0.0,
    "num_kv_heads": 0.0,
    "head_dim": 0.0,
    "intermediate_size": 0.0,  # dense-MLP width (dense layers of MoE models too)
    "vocab_size": 0.0,
    "tie_word_embeddings": 0.0,
    "attention_bias": 0.0,  # 1: q/k/v (and o, see o_proj_bias) carry biases
    "o_proj_bias": 0.0,
    "qk_norm": 0.0,  # 1: per-head RMSNorm on q and k (Qwen3)
    "attention_sinks": 0.0,  # 1: one learned sink logit per head per layer (gpt-oss)
    "mla": 0.0,  # 1: multi-head latent attention (DeepSeek-V2/V3, Kimi K2)
    "q_lora_rank": 0.0,
    "kv_lora_rank": 0.0,
    "qk_nope_head_dim": 0.0,
    "qk_rope_head_dim": 0.0,
    "v_head_dim": 0.0,
    "num_experts": 0.0,  # routed experts per MoE layer (0: dense model)
    "experts_per_token": 0.0,
    "moe_intermediate_size": 0.0,
    "num_shared_experts": 0.0,
    "shared_expert_intermediate_size": 0.0,  # per shared expert
    "num_dense_layers": 0.0,  # layers with a dense MLP; the rest are MoE layers
    "expert_bias": 0.0,  # 1: expert up/gate/down carry biases (gpt-oss)
    "router_bias": 0.0,  # 1: router has a bias / score-correction vector
    "sliding_window": 0.0,  # tokens; 0: no sliding-window layers
    "num_sliding_layers": 0.0,
    "mtp_layers": 0.0,  # DeepSeek-style multi-token-prediction modules in the checkpoint
    "mtp_has_own_embeddings": 0.0,  # HF DeepSeek checkpoints store embed + head copies per MTP module
}


class Architecture(eqx.Module):
    """Shape of a decoder-only transformer. All fields are float64 scalars (or stacked arrays)."""

    hidden_size: Array
    num_layers: Array
    num_attention_heads: Array
    num_kv_heads: Array
    head_dim: Array
    intermediate_size: Array
    vocab_size: Array
    tie_word_embeddings: Array
    attention_bias: Array
    o_proj_bias: Array
    qk_norm: Array
    attention_sinks: Array
    mla: Array
    q_lora_rank: Array
    kv_lora_rank: Array
    qk_nope_head_dim: Array
    qk_rope_head_dim: Array
    v_head_dim: Array
    num_experts: Array
    experts_per_token: Array
    moe_intermediate_size: Array
    num_shared_experts: Array
    shared_expert_intermediate_size: Array
    num_dense_layers: Array
    expert_bias: Array
    router_bias: Array
    sliding_window: Array
    num_sliding_layers: Array
    mtp_layers: Array
    mtp_has_own_embeddings: Array

    @classmethod
    def from_mapping(cls, values: dict) -> Architecture:
        """Build from a YAML ``architecture:`` mapping; missing fields take ``ARCH_FIELDS`` defaults."""
        return cls(**arrays_from_mapping(values, ARCH_FIELDS, "architecture"))

    # ----- derived sizes (pure, vmappable) ------------------------------------------------------

    @property
    def num_moe_layers(self) -> Array:
        is_moe = self.num_experts > 0
        return jnp.where(is_moe, self.num_layers - self.num_dense_layers, 0.0)

    @property
    def num_mlp_dense_layers(self) -> Array:
        return self.num_layers - self.num_moe_layers

    def attention_params_per_layer(self) -> Array:
        """Weights of one attention block (projections, biases, q/k norms, sinks)."""
        d, nh, nkv, hd = (
            self.hidden_size,
            self.num_attention_heads,
            self.num_kv_heads,
            self.head_dim,
        )
        gqa = d * nh * hd + 2.0 * d * nkv * hd + nh * hd * d
        gqa += self.attention_bias * (nh * hd + 2.0 * nkv * hd)
        gqa += self.o_proj_bias * d
        gqa += self.qk_norm * 2.0 * hd
        gqa += self.attention_sinks * nh
        # MLA (DeepSeek-V2 paper, arXiv:2405.04434, eq. 37-47): low-rank q (optional) and a joint
        # compressed kv latent of rank kv_lora_rank plus a decoupled RoPE key.
        qk_dim = self.qk_nope_head_dim + self.qk_rope_head_dim
        q = jnp.where(
            self.q_lora_rank > 0,
            d * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * nh * qk_dim,
            d * nh * qk_dim,
        )
        kv = d * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
        kv += self.kv_lora_rank * nh * (self.qk_nope_head_dim + self.v_head_dim)
        mla = q + kv + nh * self.v_head_dim * d
        return jnp.where(self.mla > 0, mla, gqa)

    @property
    def attention_value_width(self) -> Array:
        """Width of one head's attention output (v_head_dim for MLA, head_dim for GQA)."""
        return jnp.where(self.mla > 0, self.v_head_dim, self.head_dim)

    def attention_output_params(self) -> Array:
        """Weights of the output projection alone (heads x value width -> hidden, + bias)."""
        bias = jnp.where(self.mla > 0, 0.0, self.o_proj_bias * self.hidden_size)
        return self.num_attention_heads * self.attention_value_width * self.hidden_size + bias

    def dense_mlp_params(self) -> Array:
        """Gated (SwiGLU) MLP: gate, up and down projections."""
        return 3.0 * self.hidden_size * self.intermediate_size

    def expert_params(self) -> Array:
        """One routed expert (gated MLP, optional biases)."""
        f, d = self.moe_intermediate_size, self.hidden_size
        return 3.0 * d * f + self.expert_bias * (2.0 * f + d)

    def shared_expert_params(self) -> Array:
        return (
            self.num_shared_experts * 3.0 * self.hidden_size * self.shared_expert_intermediate_size
        )

    def router_params(self) -> Array:
        return self.num_experts * self.hidden_size + self.router_bias * self.num_experts

    def moe_layer_params(self, active: bool = False) -> Array:
        experts = self.experts_per_token if active else self.num_experts
        return experts * self.expert_params() + self.shared_expert_params() + self.router_params()

    def embedding_params(self) -> Array:
        return self.vocab_size * self.hidden_size

    def lm_head_params(self) -> Array:
        return jnp.where(self.tie_word_embeddings > 0, 0.0, self.vocab_size * self.hidden_size)

    def mtp_params(self) -> Array:
        """DeepSeek-V3 multi-token-prediction modules (arXiv:2412.19437 §2.2): per module an MoE
        decoder layer, two RMSNorms on its inputs, a 2d→d projection and a final norm; HF
        checkpoints also store a copy of the embedding and of the output head per module."""
        d = self.hidden_size
        layer = self.attention_params_per_layer() + self.moe_layer_params() + 2.0 * d
        per_module = layer + 2.0 * d * d + 3.0 * d
        per_module += self.mtp_has_own_embeddings * 2.0 * self.vocab_size * d
        return self.mtp_layers * per_module

    def _total(self, active: bool, include_mtp: bool) -> Array:
        d = self.hidden_size
        per_layer_common = self.attention_params_per_layer() + 2.0 * d  # + two RMSNorms
        total = self.num_layers * per_layer_common
        total += self.num_mlp_dense_layers * self.dense_mlp_params()
        total += self.num_moe_layers * self.moe_layer_params(active=active)
        total += self.embedding_params() + self.lm_head_params() + d  # final norm
        if include_mtp:
            total += self.mtp_params()
        return total

    def total_params(self, include_mtp: bool = True) -> Array:
        """All weights in the checkpoint (MTP modules included by default, as HF counts them)."""
        return self._total(active=False, include_mtp=include_mtp)

    def active_params(self) -> Array:
        """Weights touched per token: routed experts count only ``experts_per_token`` (MTP excluded)."""
        return self._total(active=True, include_mtp=False)

    def layer_weight_params(self, active: bool = False) -> Array:
        """Transformer-layer weights only (no embedding, head or MTP): what decode streams per step."""
        return self._total(active=active, include_mtp=False) - (
            self.embedding_params() + self.lm_head_params() + self.hidden_size
        )
