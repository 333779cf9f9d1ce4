"""Catalog loading rejects malformed files with one clear line."""

import shutil

import pytest

from dse.catalog import Catalog, CatalogError, conf_dir


def _copy_conf(tmp_path):
    root = tmp_path / "conf"
    shutil.copytree(conf_dir() / "model", root / "model")
    shutil.copytree(conf_dir() / "hardware", root / "hardware")
    return root


def test_misspelt_hardware_field_is_rejected_with_a_suggestion(tmp_path):
    root = _copy_conf(tmp_path)
    f = root / "hardware" / "h100_sxm.yaml"
    f.write_text(f.read_text().replace("sram_mb:", "sram_mbb:"))
    with pytest.raises(CatalogError, match=r"unknown field 'sram_mbb'; did you mean 'sram_mb'"):
        Catalog(root)


def test_invalid_yaml_names_the_file(tmp_path):
    root = _copy_conf(tmp_path)
    (root / "model" / "broken.yaml").write_text("id: x\narchitecture: [unclosed\n")
    with pytest.raises(CatalogError, match="broken.yaml: not valid YAML"):
        Catalog(root)


def test_unknown_architecture_field_is_rejected(tmp_path):
    root = _copy_conf(tmp_path)
    f = root / "model" / "llama3.1-8b.yaml"
    f.write_text(f.read_text().replace("hidden_size:", "hiden_size:"))
    with pytest.raises(CatalogError, match="hiden_size"):
        Catalog(root)


def test_datasets_load_with_their_moments_and_misspelt_fields_are_refused(tmp_path):
    root = _copy_conf(tmp_path)
    shutil.copytree(conf_dir() / "dataset", root / "dataset")
    d = Catalog(root).dataset("MLPerf_DeepSeek-R1")  # names are case/underscore tolerant
    assert (d.isl, d.osl) == (803.8, 4043.4) and d.osl_cv > 1.0 > d.isl_cv > 0.0
    f = root / "dataset" / "mlperf-openorca.yaml"
    f.write_text(f.read_text().replace("osl_cv:", "osl_cvv:"))
    with pytest.raises(CatalogError, match=r"unknown field 'osl_cvv'; did you mean 'osl_cv'"):
        Catalog(root)
    f.write_text(f.read_text().replace("osl_cvv: 0.7873", "osl_cv: -2"))
    with pytest.raises(CatalogError, match=r"mlperf-openorca.yaml: osl_cv=-2 is below 0"):
        Catalog(root)
