"""conf/ is a valid Hydra config tree: the catalogs compose as config groups."""

import pytest
from hydra import compose, initialize_config_dir

from dse.catalog import HARDWARE_FIELDS, Architecture, Hardware, conf_dir


@pytest.mark.parametrize(
    "model, hardware",
    [
        ("llama3.1-70b", "h100_sxm"),
        ("deepseek-r1", "gb200"),
        ("kimi-k2", "vr200"),
        ("gpt-oss-120b", "mi355x"),
    ],
)
def test_catalog_groups_compose_and_build_pytrees(model, hardware, catalog):
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=[f"model={model}", f"hardware={hardware}"])
    arch = Architecture.from_mapping(dict(cfg.model.architecture))
    assert float(arch.total_params()) == float(catalog.model(model).arch.total_params())
    spec = {k: v for k, v in cfg.hardware.items() if k in HARDWARE_FIELDS}
    hw = Hardware.from_mapping(spec, cfg.hardware.generation)
    assert float(hw.mem_bandwidth) == float(catalog.accelerator(hardware).hw.mem_bandwidth)


def test_unknown_group_entry_is_rejected():
    from hydra.errors import MissingConfigException

    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        with pytest.raises(MissingConfigException):
            compose(config_name="config", overrides=["hardware=h100"])


def test_stack_groups_compose_and_evaluate(catalog):
    """workload / system / software / cost groups compose and feed the stack model."""
    from dse.stack.config import system_values

    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(
            config_name="config",
            overrides=["system=vr200_lpx_afd", "software=nvfp4_mtp", "workload=deep_research"],
        )
    assert cfg.system.ffn.hardware == "groq3_lpx"
    assert cfg.cost.pue >= 1.0
    hw_index = {n: i for i, n in enumerate(catalog.hardware)}
    host_index = {n: i for i, n in enumerate(catalog.hosts)}
    values = system_values(dict(cfg.system), dict(cfg.software), catalog, 0, hw_index, host_index)
    assert values["ffn_units"] == 2304 and values["weight_bits"] == 4.0
    assert values["spec_method"] == 1.0 and values["prefill_units"] == 16
