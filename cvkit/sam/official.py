"""Meta's Segment Anything behind the kit's predictor interface, when a user has it and its weights.

Two routes, both optional and imported lazily (neither is a dependency of the kit):

* ``segment_anything`` (``pip install segment-anything``) with a checkpoint file such as
  ``sam_vit_b_01ec64.pth`` from the SAM repository;
* ``transformers``' ``SamModel`` with a model id such as ``"facebook/sam-vit-base"`` (downloaded on
  first use where there is internet, or from the local Hugging Face cache).

:func:`load_official_sam` raises :class:`OfficialSamUnavailable` with a message saying what was
tried and how to fix it; :func:`try_official_sam` prints that as one line and returns ``None``, so
a notebook can skip the official model and carry on with the small one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from cvkit.sam.predictor import Prediction, check_prompt

Backend = Literal["auto", "segment_anything", "transformers"]


class OfficialSamUnavailable(RuntimeError):
    """The official SAM cannot be loaded here; the message lists each route tried and why it failed."""


class OfficialSamPredictor:
    """Adapter giving ``segment_anything.SamPredictor`` or ``transformers.SamModel`` the kit's predictor interface.

    Build it with :func:`load_official_sam`, or directly from an existing object:
    ``OfficialSamPredictor(sam_predictor=SamPredictor(sam))`` or
    ``OfficialSamPredictor(hf_model=model, hf_processor=processor)``.

    Raises:
        ValueError: neither or both routes given.
        RuntimeError: ``predict`` before ``set_image``.
    """

    def __init__(self, sam_predictor=None, hf_model=None, hf_processor=None) -> None:
        if (sam_predictor is None) == (hf_model is None):
            raise ValueError(
                "give exactly one of sam_predictor=SamPredictor(...) or hf_model=SamModel(...) with hf_processor"
            )
        if hf_model is not None and hf_processor is None:
            raise ValueError("hf_model needs hf_processor=SamProcessor.from_pretrained(...)")
        self.sam_predictor, self.hf_model, self.hf_processor = sam_predictor, hf_model, hf_processor
        self.size: tuple[int, int] | None = None
        self._hf_inputs = None
        self._hf_embeddings = None

    @property
    def backend(self) -> str:
        """``"segment_anything"`` or ``"transformers"``."""
        return "segment_anything" if self.sam_predictor is not None else "transformers"

    def set_image(self, image: torch.Tensor) -> None:
        """Encode (3, H, W) float in [0, 1] (converted to the HWC uint8 array SAM expects)."""
        from cvkit.data import to_hwc_uint8

        array = to_hwc_uint8(image)  # (H, W, 3) uint8
        self.size = array.shape[:2]
        if self.sam_predictor is not None:
            self.sam_predictor.set_image(array)  # SamPredictor: "HWC uint8 format, with pixel values in [0, 255]"
            return
        self._hf_inputs = self.hf_processor(images=array, return_tensors="pt")
        device = next(self.hf_model.parameters()).device
        with torch.no_grad():
            self._hf_embeddings = self.hf_model.get_image_embeddings(self._hf_inputs["pixel_values"].to(device))

    def predict(self, points=None, labels=None, box=None, multimask: bool = True) -> Prediction:
        """Mask candidates for one prompt, best first (see :class:`cvkit.sam.predictor.PromptablePredictor`)."""
        if self.size is None:
            raise RuntimeError("an image must be set with .set_image(image) before .predict(...)")
        h, w = self.size
        points, labels, box = check_prompt(points, labels, box, h, w)
        if self.sam_predictor is not None:
            masks, scores, logits = self.sam_predictor.predict(
                point_coords=None if points is None else points.numpy(),
                point_labels=None if labels is None else labels.numpy(),
                box=None if box is None else box.numpy(),
                multimask_output=multimask,
            )
            masks, scores = torch.as_tensor(np.asarray(masks)).bool(), torch.as_tensor(np.asarray(scores)).float()
            logits = torch.as_tensor(np.asarray(logits)).float()
            if logits.shape[-2:] != (h, w):  # SamPredictor returns 256x256 low-res logits
                logits = torch.nn.functional.interpolate(
                    logits[None], size=(h, w), mode="bilinear", align_corners=False
                )[0]
        else:
            kwargs = {}
            if points is not None:
                kwargs.update(input_points=[[points.tolist()]], input_labels=[[labels.tolist()]])
            if box is not None:
                kwargs.update(input_boxes=[[box.tolist()]])
            device = next(self.hf_model.parameters()).device
            prompt_inputs = _hf_prompt_tensors(self._hf_inputs, kwargs)
            with torch.no_grad():
                out = self.hf_model(
                    image_embeddings=self._hf_embeddings,
                    multimask_output=multimask,
                    **{k: v.to(device) for k, v in prompt_inputs.items()},
                )
            logits = self.hf_processor.image_processor.post_process_masks(
                out.pred_masks.cpu(),
                self._hf_inputs["original_sizes"],
                self._hf_inputs["reshaped_input_sizes"],
                binarize=False,
            )[0][0].float()  # (K, H, W)
            masks = logits > 0
            scores = out.iou_scores[0, 0].float().cpu()
        order = scores.argsort(descending=True)
        return Prediction(masks=masks[order], scores=scores[order], logits=logits[order])


def _hf_prompt_tensors(image_inputs, prompt_kwargs) -> dict:
    """Scale prompts to the processor's resized frame and return ``input_points``/``input_labels``/``input_boxes`` tensors."""
    original = image_inputs["original_sizes"]
    reshaped = image_inputs["reshaped_input_sizes"]
    oh, ow = (int(v) for v in original[0])
    rh, rw = (int(v) for v in reshaped[0])
    scale = torch.tensor([rw / ow, rh / oh])
    out = {}
    if "input_points" in prompt_kwargs:
        pts = torch.tensor(prompt_kwargs["input_points"], dtype=torch.float32) * scale  # (1, 1, N, 2)
        out["input_points"] = pts
        out["input_labels"] = torch.tensor(prompt_kwargs["input_labels"], dtype=torch.long)  # (1, 1, N)
    if "input_boxes" in prompt_kwargs:
        out["input_boxes"] = torch.tensor(prompt_kwargs["input_boxes"], dtype=torch.float32) * scale.repeat(
            2
        )  # (1, 1, 4)
    return out


def load_official_sam(
    checkpoint: str | Path | None = None,
    model_type: str = "vit_b",
    model_id: str = "facebook/sam-vit-base",
    backend: Backend = "auto",
    device: str | torch.device | None = None,
) -> OfficialSamPredictor:
    """Load Meta's SAM and wrap it in :class:`OfficialSamPredictor`.

    Args:
        checkpoint: path of a ``segment_anything`` checkpoint (``sam_vit_b_01ec64.pth``, ...).
        model_type: ``segment_anything`` registry key matching the checkpoint (``vit_b``, ``vit_l``, ``vit_h``).
        model_id: ``transformers`` model id or local folder.
        backend: ``"segment_anything"``, ``"transformers"`` or ``"auto"`` (the first that works, in that order).
        device: where to run (``None``: :func:`cvkit.runtime.pick_device`).

    Raises:
        OfficialSamUnavailable: no route worked; the message says why for each and how to fix it.
        ValueError: unknown ``backend``.
    """
    from cvkit.runtime import pick_device

    if backend not in ("auto", "segment_anything", "transformers"):
        raise ValueError(f"unknown backend {backend!r}; choose one of ('auto', 'segment_anything', 'transformers')")
    device = pick_device(device)
    reasons = []
    if backend in ("auto", "segment_anything"):
        try:
            from segment_anything import SamPredictor, sam_model_registry
        except ImportError:
            reasons.append("segment_anything is not installed (pip install segment-anything)")
        else:
            if checkpoint is None or not Path(checkpoint).is_file():
                reasons.append(
                    f"segment_anything needs a checkpoint file; got {checkpoint!r} (download sam_vit_b_01ec64.pth from the SAM repository)"
                )
            else:
                try:
                    sam = sam_model_registry[model_type](checkpoint=str(checkpoint)).to(device).eval()
                    return OfficialSamPredictor(sam_predictor=SamPredictor(sam))
                except Exception as exc:  # a corrupt or mismatched checkpoint
                    reasons.append(f"segment_anything could not load {checkpoint}: {type(exc).__name__}: {exc}")
    if backend in ("auto", "transformers"):
        try:
            from transformers import SamModel, SamProcessor
        except ImportError:
            reasons.append("transformers is not installed (pip install transformers)")
        else:
            # a local folder or a cached copy first; the hub only when it answers (offline, the hub client would
            # retry for half a minute before failing)
            local_only = Path(model_id).is_dir() or not _hub_reachable()
            try:
                model = SamModel.from_pretrained(model_id, local_files_only=local_only).to(device).eval()
                processor = SamProcessor.from_pretrained(model_id, local_files_only=local_only)
                return OfficialSamPredictor(hf_model=model, hf_processor=processor)
            except Exception as exc:  # offline without a cached copy, or a wrong id
                why = "no internet and no cached copy" if local_only else "a wrong id, or a failed download?"
                reasons.append(f"transformers could not load {model_id!r} ({why}): {type(exc).__name__}")
    raise OfficialSamUnavailable("official SAM unavailable: " + "; ".join(reasons))


def _hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """True when a TCP connection to the Hugging Face hub opens within ``timeout`` seconds."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def try_official_sam(**kwargs) -> OfficialSamPredictor | None:
    """:func:`load_official_sam`, or ``None`` after printing one line saying why it is skipped."""
    try:
        return load_official_sam(**kwargs)
    except OfficialSamUnavailable as exc:
        print(f"{exc}. Skipping the official SAM; the small model trained above is used instead.")
        return None
