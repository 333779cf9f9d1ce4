"""Catalogs: model architectures and hardware, loaded from ``conf/`` YAML into pytrees."""

from .architecture import ARCH_FIELDS as ARCH_FIELDS, Architecture as Architecture
from .hardware import (
    GENERATIONS as GENERATIONS,
    HARDWARE_FIELDS as HARDWARE_FIELDS,
    Hardware as Hardware,
)
from .registry import (
    Catalog as Catalog,
    CatalogError as CatalogError,
    conf_dir as conf_dir,
    load_catalog as load_catalog,
)
