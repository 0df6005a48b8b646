"""What the lessons train: each lesson's training function (the one its notebook calls) and the course checkpoints
made with it (:mod:`cvkit.lessons.checkpoints`).

    model = load_course_checkpoint("detr")          # the shipped weights, eval mode, checked against their manifest
    cvkit checkpoints retrain detr                   # the same training, from scratch, writing a new manifest
"""

from cvkit.lessons.checkpoints import (
    CourseCheckpoint,
    TrainingPaused,
    checkpoint_available,
    compare_manifests,
    course_checkpoint_or,
    get_checkpoint,
    list_checkpoints,
    load_course_checkpoint,
    not_shipped_message,
    read_manifest,
    read_state_dict,
    register_checkpoint,
    retrain,
    total_size_mb,
)

# Lesson modules register their checkpoints on import; one import per module, sorted.
from cvkit.lessons import clip  # noqa: F401,E402
from cvkit.lessons import detr  # noqa: F401,E402
from cvkit.lessons import diffusion  # noqa: F401,E402
from cvkit.lessons import sam  # noqa: F401,E402
from cvkit.lessons import ssl  # noqa: F401,E402
from cvkit.lessons import unified  # noqa: F401,E402
from cvkit.lessons import vit  # noqa: F401,E402

__all__ = [
    "CourseCheckpoint",
    "TrainingPaused",
    "checkpoint_available",
    "compare_manifests",
    "course_checkpoint_or",
    "get_checkpoint",
    "list_checkpoints",
    "load_course_checkpoint",
    "not_shipped_message",
    "read_manifest",
    "read_state_dict",
    "register_checkpoint",
    "retrain",
    "total_size_mb",
]
