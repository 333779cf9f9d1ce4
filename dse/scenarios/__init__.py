"""Scenario tables (the ``dse predict`` schema): reading, parsing and validating rows into the
model's :class:`~dse.model.design.Design` pytrees. Predicting them is ``dse.predict``."""

from .schema import INPUT_COLUMNS as INPUT_COLUMNS
from .schema import OUTPUT_COLUMNS as OUTPUT_COLUMNS
from .schema import parse_frame as parse_frame
from .schema import parse_row as parse_row
