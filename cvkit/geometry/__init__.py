"""Motion and depth from images (lecture 00's task tour): optical flow and stereo.

* :mod:`~cvkit.geometry.flow`: Lucas-Kanade and Horn-Schunck optical flow, warping, end-point error.
* :mod:`~cvkit.geometry.stereo`: block-matching disparity, disparity to depth, depth to a point cloud.

The small flow CNN is :mod:`cvkit.models.flownet`; the moving shapes it trains on are :mod:`cvkit.data.video`.
"""

from cvkit.geometry.flow import endpoint_error, flow_step, horn_schunck, lucas_kanade, warp
from cvkit.geometry.stereo import block_matching, depth_from_disparity, disparity_error, point_cloud

__all__ = [
    "block_matching",
    "depth_from_disparity",
    "disparity_error",
    "endpoint_error",
    "flow_step",
    "horn_schunck",
    "lucas_kanade",
    "point_cloud",
    "warp",
]
