"""Catalogs: model architectures and hardware, loaded from ``conf/`` YAML into the model's input
pytrees (``dse.model.architecture``, ``dse.model.hardware``), and cost parameters."""

from ..model.architecture import ARCH_FIELDS as ARCH_FIELDS
from ..model.architecture import Architecture as Architecture
from ..model.hardware import GENERATIONS as GENERATIONS
from ..model.hardware import HARDWARE_FIELDS as HARDWARE_FIELDS
from ..model.hardware import Hardware as Hardware
from ..model.hardware import HostTier as HostTier
from .costs import load_api_prices as load_api_prices
from .costs import load_cost_params as load_cost_params
from .registry import Catalog as Catalog
from .registry import CatalogError as CatalogError
from .registry import conf_dir as conf_dir
from .registry import load_catalog as load_catalog
