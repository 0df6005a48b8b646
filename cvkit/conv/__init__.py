"""Convolution and receptive fields (lectures 02, 04, 05), one concept per module.

* :mod:`~cvkit.conv.ops`: output sizes, parameter counts, convolution written out (loops, im2col) and as a matrix.
* :mod:`~cvkit.conv.receptive_field`: analytic receptive fields, of a chain of layers or of any traceable model.
* :mod:`~cvkit.conv.rules`: how each operation changes a receptive field (the table the analytic walk reads).
* :mod:`~cvkit.conv.empirical`: receptive fields measured by back-propagating from one unit to the input.

The pictures are in :mod:`cvkit.viz.conv` and :mod:`cvkit.viz.receptive_field`, the slider in
:mod:`cvkit.widgets.receptive_field`.
"""

from cvkit.conv.empirical import EmpiricalReceptiveField, conv_chain, empirical_receptive_field, linear_positive_copy
from cvkit.conv.ops import (
    LayerCost,
    conv2d_im2col,
    conv2d_loops,
    conv_matrix,
    conv_output_size,
    conv_parameter_count,
    efficiency_table,
)
from cvkit.conv.receptive_field import (
    ReceptiveField,
    ReceptiveFieldError,
    ReceptiveFieldTable,
    receptive_field_chain,
    receptive_fields,
)

__all__ = [
    "EmpiricalReceptiveField",
    "LayerCost",
    "ReceptiveField",
    "ReceptiveFieldError",
    "ReceptiveFieldTable",
    "conv2d_im2col",
    "conv2d_loops",
    "conv_chain",
    "conv_matrix",
    "conv_output_size",
    "conv_parameter_count",
    "efficiency_table",
    "empirical_receptive_field",
    "linear_positive_copy",
    "receptive_field_chain",
    "receptive_fields",
]
