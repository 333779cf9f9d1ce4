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
