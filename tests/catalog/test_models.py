"""Model catalog (conf/model/*.yaml): parameter counts against the published figures, name
resolution, and KV-cache bytes per token against the hand-derived table of workloads.md §4."""

import pytest

from dse.catalog import CatalogError
from dse.catalog.registry import _norm

# The models the catalog must hold: Hugging Face id -> file stem.
REQUIRED = {
    "meta-llama/Llama-3.1-8B-Instruct": "llama3.1-8b",
    "meta-llama/Llama-3.1-70B-Instruct": "llama3.1-70b",
    "meta-llama/Llama-3.3-70B-Instruct": "llama3.3-70b",
    "meta-llama/Llama-2-70b-chat-hf": "llama2-70b",
    "meta-llama/Llama-3.1-405B-Instruct": "llama3.1-405b",
    "Qwen/Qwen3-32B": "qwen3-32b",
    "Qwen/Qwen3-30B-A3B": "qwen3-30b-a3b",
    "Qwen/Qwen3-235B-A22B": "qwen3-235b-a22b",
    "deepseek-ai/DeepSeek-V3": "deepseek-v3",
    "deepseek-ai/DeepSeek-R1": "deepseek-r1",
    "openai/gpt-oss-120b": "gpt-oss-120b",
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "mixtral-8x7b",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct": "llama4-maverick",
    "moonshotai/Kimi-K2-Instruct": "kimi-k2",
}

TOTAL_RTOL = 0.01  # computed total vs published total
ACTIVE_RTOL = 0.03  # computed active vs published active (publishers round to 2-3 digits)

KIB = 1024.0
# workloads.md §4 "Bytes per token" table (BF16 KV, KiB = 1024 B).
KV_TABLE_KIB = {
    "meta-llama/Llama-3.1-8B-Instruct": 128.0,
    "meta-llama/Llama-3.1-70B-Instruct": 320.0,
    "meta-llama/Llama-3.1-405B-Instruct": 504.0,
    "Qwen/Qwen3-235B-A22B": 188.0,
    "deepseek-ai/DeepSeek-V3": 68.6,  # "DeepSeek-V3/R1, Kimi K2 (61 L, MLA)" row, rounded
    "deepseek-ai/DeepSeek-R1": 68.6,
    "moonshotai/Kimi-K2-Instruct": 68.6,
}


def _published_active_comparable(entry) -> float:
    """``active_params()`` in the publisher's convention: some (OpenAI) leave the input-embedding
    lookup out of the active count; the YAML says so with ``active_excludes_input_embedding``."""
    arch = entry.arch
    active = float(arch.active_params())
    if entry.raw["published"].get("active_excludes_input_embedding"):
        active -= float(arch.embedding_params())
    return active


def _kv_bytes_per_token_bf16(arch) -> float:
    """Hand formula (workloads.md §4), from the architecture fields only, 2 bytes per element:
    GQA/MHA ``2 * L * n_kv * head_dim * 2``; MLA ``L * (kv_lora_rank + qk_rope_head_dim) * 2``."""
    layers = float(arch.num_layers)
    if float(arch.mla) > 0:
        return layers * (float(arch.kv_lora_rank) + float(arch.qk_rope_head_dim)) * 2.0
    return 2.0 * layers * float(arch.num_kv_heads) * float(arch.head_dim) * 2.0


# ----- presence and names ----------------------------------------------------------------------


def test_all_required_models_present(catalog):
    missing = sorted(set(REQUIRED) - set(catalog.models))
    assert not missing, f"models missing from conf/model/: {missing}"


@pytest.mark.parametrize("model_id", sorted(REQUIRED))
def test_model_resolves_by_id_stem_and_aliases(catalog, model_id):
    entry = catalog.model(model_id)
    assert entry.id == model_id
    assert entry.alias == REQUIRED[model_id]
    assert catalog.model(REQUIRED[model_id]).id == model_id
    assert len(entry.aliases) >= 1, f"{model_id}: give at least one friendly alias"
    for alias in entry.aliases:
        assert catalog.model(alias).id == model_id
        assert catalog.model(alias.upper()).id == model_id  # names are case-insensitive


def test_names_do_not_collide(catalog):
    """No name (id, file stem, alias, repo-name tail) may point at two different models."""
    owner: dict[str, str] = {}
    for entry in catalog.models.values():
        names = {entry.id, entry.alias, *entry.aliases, entry.id.split("/")[-1]}
        for name in {_norm(n) for n in names}:
            assert owner.setdefault(name, entry.id) == entry.id, (
                f"name {name!r} used by both {owner[name]} and {entry.id}"
            )


def test_typo_gets_did_you_mean(catalog):
    with pytest.raises(CatalogError, match="did you mean") as err:
        catalog.model("deepsek-v3")
    assert "deepseek-v3" in str(err.value)
    with pytest.raises(CatalogError, match="did you mean") as err:
        catalog.model("qwen3-253b-a22b")
    assert "qwen3-235b-a22b" in str(err.value)


# ----- parameter counts ------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", sorted(REQUIRED))
def test_total_params_match_published(catalog, model_id):
    entry = catalog.model(model_id)
    computed = float(entry.arch.total_params())
    published = entry.published_total_params
    assert computed == pytest.approx(published, rel=TOTAL_RTOL), (
        f"{model_id}: computed {computed:,.0f} vs published {published:,.0f} "
        f"({100 * (computed / published - 1):+.2f} %)"
    )


@pytest.mark.parametrize("model_id", sorted(REQUIRED))
def test_active_params_match_published(catalog, model_id):
    entry = catalog.model(model_id)
    is_moe = float(entry.arch.num_experts) > 0
    if entry.published_active_params is None:
        assert not is_moe, f"{model_id}: MoE model needs published.active_params"
        assert float(entry.arch.active_params()) == float(entry.arch.total_params())
        return
    assert is_moe
    computed = _published_active_comparable(entry)
    published = entry.published_active_params
    assert computed == pytest.approx(published, rel=ACTIVE_RTOL), (
        f"{model_id}: computed active {computed:,.0f} vs published {published:,.0f} "
        f"({100 * (computed / published - 1):+.2f} %)"
    )


def test_every_catalog_model_matches_published(catalog):
    """Also covers YAML files added later that are not in REQUIRED."""
    for entry in catalog.models.values():
        total = float(entry.arch.total_params())
        assert total == pytest.approx(entry.published_total_params, rel=TOTAL_RTOL), entry.id
        if entry.published_active_params is not None:
            active = _published_active_comparable(entry)
            assert active == pytest.approx(entry.published_active_params, rel=ACTIVE_RTOL), entry.id


@pytest.mark.parametrize("model_id", ["deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-R1"])
def test_deepseek_main_model_without_mtp_is_671b(catalog, model_id):
    """685B (HF) = 671B main model + MTP module (11.6B unique + its embedding and head copies)."""
    arch = catalog.model(model_id).arch
    assert float(arch.total_params(include_mtp=False)) == pytest.approx(671e9, rel=0.001)
    mtp = float(arch.mtp_params()) - 2.0 * float(arch.embedding_params())
    assert mtp == pytest.approx(11.6e9, rel=0.01)


def test_kimi_k2_checkpoint_has_no_mtp(catalog):
    arch = catalog.model("kimi-k2").arch
    assert float(arch.mtp_params()) == 0.0
    assert float(arch.total_params()) == float(arch.total_params(include_mtp=False))


# ----- KV bytes per token (hand formula vs the workloads.md table) -----------------------------


@pytest.mark.parametrize("model_id", sorted(KV_TABLE_KIB))
def test_kv_bytes_per_token_hand_formula(catalog, model_id):
    kib = _kv_bytes_per_token_bf16(catalog.model(model_id).arch) / KIB
    assert kib == pytest.approx(KV_TABLE_KIB[model_id], abs=0.05), f"{model_id}: {kib} KiB"


def test_mla_kv_bytes_exact(catalog):
    # workloads.md §9: DeepSeek-V3 MLA 70,272 B per token in BF16 (61 x 576 x 2).
    assert _kv_bytes_per_token_bf16(catalog.model("deepseek-v3").arch) == 70272.0
