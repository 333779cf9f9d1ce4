"""Catalogs: model architectures and hardware, loaded from ``conf/`` YAML into pytrees."""

from .architecture import ARCH_FIELDS as ARCH_FIELDS
from .architecture import Architecture as Architecture
from .costs import load_api_prices as load_api_prices
from .costs import load_cost_params as load_cost_params
from .hardware import (
    GENERATIONS as GENERATIONS,
)
from .hardware import (
    HARDWARE_FIELDS as HARDWARE_FIELDS,
)
from .hardware import (
    Hardware as Hardware,
)
from .hardware import HostTier as HostTier
from .registry import (
    Catalog as Catalog,
)
from .registry import (
    CatalogError as CatalogError,
)
from .registry import (
    conf_dir as conf_dir,
)
from .registry import (
    load_catalog as load_catalog,
)
