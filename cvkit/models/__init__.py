"""Small, named models built from :mod:`cvkit.layers`, and the registry that lists them.

``create_model(name, **kwargs)`` builds any of them; ``list_models()`` names them all.
Importing this package imports every model module, so the registry is complete. Registering is done here and only
here: task packages (:mod:`cvkit.ssl`, :mod:`cvkit.vl`, :mod:`cvkit.sam`, :mod:`cvkit.diffusion`) define their
classes and never import :mod:`cvkit.models`; their entries are in ``self_supervised``, ``vision_language``,
``segment_anything`` and ``diffusion_unet``.
"""

from cvkit.models.registry import (
    ModelSpec,
    count_parameters,
    create_model,
    get_spec,
    list_models,
    model_factory,
    register_model,
)

# Model modules register themselves on import; keep one import per module, sorted.
from cvkit.models import alexnet  # noqa: F401,E402
from cvkit.models import autoencoder  # noqa: F401,E402
from cvkit.models import convnet  # noqa: F401,E402
from cvkit.models import convnext  # noqa: F401,E402
from cvkit.models import cyclegan  # noqa: F401,E402
from cvkit.models import dcgan  # noqa: F401,E402
from cvkit.models import deit  # noqa: F401,E402
from cvkit.models import densenet  # noqa: F401,E402
from cvkit.models import detr  # noqa: F401,E402
from cvkit.models import diffusion_unet  # noqa: F401,E402
from cvkit.models import fast_rcnn  # noqa: F401,E402
from cvkit.models import faster_rcnn  # noqa: F401,E402
from cvkit.models import fcn  # noqa: F401,E402
from cvkit.models import flownet  # noqa: F401,E402
from cvkit.models import googlenet  # noqa: F401,E402
from cvkit.models import lenet  # noqa: F401,E402
from cvkit.models import maxvit  # noqa: F401,E402
from cvkit.models import mlp  # noqa: F401,E402
from cvkit.models import neocognitron  # noqa: F401,E402
from cvkit.models import region_cnn  # noqa: F401,E402
from cvkit.models import replknet  # noqa: F401,E402
from cvkit.models import resnet  # noqa: F401,E402
from cvkit.models import restoration  # noqa: F401,E402
from cvkit.models import segment_anything  # noqa: F401,E402
from cvkit.models import self_supervised  # noqa: F401,E402
from cvkit.models import swin  # noqa: F401,E402
from cvkit.models import unidetector  # noqa: F401,E402
from cvkit.models import unet  # noqa: F401,E402
from cvkit.models import vae  # noqa: F401,E402
from cvkit.models import vgg  # noqa: F401,E402
from cvkit.models import vision_language  # noqa: F401,E402
from cvkit.models import vit  # noqa: F401,E402
from cvkit.models import zfnet  # noqa: F401,E402

__all__ = [
    "ModelSpec",
    "count_parameters",
    "create_model",
    "get_spec",
    "list_models",
    "model_factory",
    "register_model",
]
