"""Calibration of the model's efficiency parameters against public measurements."""

from .params import Calibration as Calibration
from .params import default_calibration_path as default_calibration_path
