"""Scenario tables (the ``dse predict`` schema): parsing, validation, batched prediction."""

from .predict import predict_frame as predict_frame
from .schema import (
    INPUT_COLUMNS as INPUT_COLUMNS,
)
from .schema import (
    OUTPUT_COLUMNS as OUTPUT_COLUMNS,
)
from .schema import (
    parse_row as parse_row,
)
