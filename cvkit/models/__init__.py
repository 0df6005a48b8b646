"""Small, named models built from :mod:`cvkit.layers`, and the registry that lists them.

``create_model(name, **kwargs)`` builds any of them; ``list_models()`` names them all.
Importing this package imports every model module, so the registry is complete.
"""

from cvkit.models.registry import ModelSpec, count_parameters, create_model, get_spec, list_models, register_model

# Model modules register themselves on import; keep one import per module, sorted.
from cvkit.models import convnet, deit, mlp, swin, vit  # noqa: F401,E402

__all__ = ["ModelSpec", "count_parameters", "create_model", "get_spec", "list_models", "register_model"]
