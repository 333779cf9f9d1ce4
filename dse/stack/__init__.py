"""Whole-stack evaluation from config names: systems (hardware mixes), software, workloads."""

from .api import ModelInputs as ModelInputs
from .api import Stack as Stack
from .api import metrics_frame as metrics_frame
from .config import load_group as load_group
from .config import system_values as system_values
