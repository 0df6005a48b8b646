"""Run the full profile's code paths of lecture notebooks with tiny sizes: a smoke test for a machine without a GPU.

    python ci/full_smoke.py [NAMES ...] [--out DIR] [--data DIR]

Each notebook runs with ``PROFILE = "full"`` and its ``FULL`` dict replaced by :data:`TINY` (the same keys, a few
hundred images, one epoch), so every ``if not P.fast`` branch, every full-only section (DeiT, the real datasets, the
t-SNE plots, ...) and every full-profile check executes in minutes on 2 CPU cores. The models are barely trained, so
a check of the Checks cell that asserts a full-profile accuracy bar is expected to fail: a notebook *passes the smoke
test* when it runs to its Checks cell (``report.json`` records where each one stopped). The numbers mean nothing.

``--data DIR`` sets ``$CVKIT_DATA`` for the kernels (e.g. a folder of small stand-ins for CIFAR-10, Oxford-IIIT Pet
and VOC in their own formats), so the real-data sections run too. Checkpoints and other outputs go to ``outputs/``
under ``--out`` (as ``$CVKIT_OUTPUT``, unless that is set), so a smoke run leaves nothing beside real full runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cvkit.course.lectures.notebooks import run_notebook  # noqa: E402

# the FULL dict of every notebook, shrunk: same keys, so use_profile accepts it
TINY = {
    "00_what_a_computer_sees": dict(photo_size=512, tour_images=8, flow_pairs=200, flow_epochs=1, hs_iterations=500),
    "01_learning_as_optimization": dict(
        train_images=2000, epochs=1, descent_steps=200, digits_steps=1000, power_iterations=30
    ),
    "02_convolution": dict(photo_size=512, timing_repeats=10, neocognitron_images=500, neocognitron_epochs=1),
    "03_cnn_building_blocks_2_weight_normalization": dict(train_images=1000, test_images=500, epochs=1),
    "03_cnn_building_blocks": dict(epochs=1, train_images=1000, test_images=500),
    "04_cnn_architectures": dict(
        image_size=28,
        width=4,
        shallow=8,
        deep=14,
        train_images=500,
        epochs=1,
        zoo=(
            "alexnet_mini",
            "vgg_mini",
            "googlenet_mini",
            "resnext_mini",
            "densenet_mini",
            "se_resnet_mini",
            "sknet_mini",
            "convnext_mini",
            "replknet_mini",
        ),
        zoo_epochs=1,
        cifar=True,
    ),
    "05_seeing_inside_cnns": dict(train_images=500, epochs=1, width=16, canvas=36, test_images=200),
    "06_attention_vit": dict(
        train_sizes=(200, 400), epochs=1, batch_size=64, test_images=200, train_deit=True, photos=4
    ),
    "07_hierarchical_transformers": dict(train_images=300, epochs=1, batch_size=64, lr=1e-3, test_images=200),
    "07_hierarchical_transformers_2_swin_v2_maxvit": dict(train_images=300, test_images=200, epochs=1, batch_size=64),
    "08_object_detection": dict(
        loc_images=300, loc_epochs=1, region_images=100, region_epochs=1, eval_images=20, fast_rcnn_epochs=1
    ),
    "08_object_detection_2_faster_rcnn": dict(
        train_images=64, epochs=1, batch_size=8, lr=3e-3, val_images=20, voc_images=4
    ),
    "08_object_detection_3_detr": dict(train_images=64, epochs=1, batch_size=32, val_images=20),
    "09_segmentation": dict(
        image_size=64,
        train_images=100,
        patch_samples=2000,
        fcn_epochs=1,
        unet_epochs=2,
        unet_base=16,
        pet_images=64,
        pet_size=96,
    ),
    "09_segmentation_2_mask_rcnn": dict(train_images=64, epochs=1, mask_channels=64, val_images=20),
    "10_1_captioning": dict(
        train_images=300,
        test_images=100,
        image_size=64,
        widths=(32, 64, 128),
        decoder_layers=2,
        epochs=1,
        batch_size=128,
        lr=2e-3,
        beam_size=3,
    ),
    "10_2_clip_vision_language": dict(
        train_images=600, test_images=200, image_size=64, widths=(32, 64, 128), epochs=1, batch_size=256, lr=2e-3
    ),
    "10_3_vqa": dict(train_images=300, test_images=100, epochs=1, batch_size=64),
    "11_1_ssl_pretext_tasks": dict(
        pretrain_images=1024,
        probe_train=1000,
        probe_test=500,
        widths=(32, 64, 128),
        epochs=1,
        batch_size=512,
        lr=2e-3,
        colour_images=500,
        embedding="tsne",
    ),
    "11_2_ssl_contrastive": dict(
        pretrain_images=1024,
        probe_train=1000,
        probe_test=500,
        widths=(32, 64, 128),
        epochs=1,
        batch_size=512,
        lr=2e-3,
        queue_size=16384,
        embedding="tsne",
    ),
    "11_3_ssl_masked_modeling": dict(
        pretrain_images=1024,
        probe_train=1000,
        probe_test=500,
        dim=128,
        depth=6,
        epochs=1,
        batch_size=512,
        lr=1.5e-3,
        visual_tokens=256,
        embedding="tsne",
    ),
    "11_4_ssl_cpc_dae_tracking": dict(
        pretrain_images=512,
        probe_train=500,
        probe_test=200,
        widths=(16, 32, 64),
        epochs=1,
        batch_size=256,
        lr=2e-3,
        videos=4,
        frames=12,
    ),
    "12_autoencoders_gans": dict(
        train_images=1000,
        batch_size=128,
        ae_epochs=1,
        vae_epochs=1,
        gan_epochs=1,
        width=32,
        gan_width=64,
        restore_patches=500,
        restore_epochs=1,
        restore_width=64,
        restore_depth=8,
    ),
    "12_autoencoders_gans_2_cyclegan_style": dict(
        train_images=1000,
        gan_epochs=1,
        gan_width=64,
        cycle_steps=50,
        style_patches=1000,
        style_epochs=1,
        style_steps=20,
        style_size=256,
    ),
    "12_diffusion": dict(
        train_images=500,
        epochs=1,
        batch_size=128,
        base_channels=48,
        lr=1e-3,
        ddpm_steps=1000,
        ddim_steps=50,
        grid=10,
        cfg_samples=10,
    ),
    "12_diffusion_2_latent": dict(
        train_images=600,
        ae_epochs=1,
        latent_epochs=2,
        pixel_images=200,
        pixel_epochs=1,
        base_channels=16,
        ddim_steps=5,
        samples=50,
    ),
    "13_segment_anything": dict(
        image_size=64,
        train_images=300,
        test_images=100,
        epochs=1,
        batch_size=64,
        embed_dim=64,
        encoder_width=32,
        encoder_blocks=3,
        lr=2e-3,
        videos=4,
    ),
    "13_segment_anything_2_unified_models": dict(
        train_images=300,
        test_images=50,
        bins=16,
        epochs=1,
        batch_size=128,
        region_images=200,
        region_epochs=1,
    ),
}


def checks_cell(path: Path) -> int:
    """Index of the last code cell (the Checks cell of a lecture notebook)."""
    cells = json.loads(path.read_text())["cells"]
    return max(i for i, c in enumerate(cells) if c["cell_type"] == "code")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook stems (default: all in TINY)")
    parser.add_argument("--out", default="build/full-smoke")
    parser.add_argument("--data", default=None, help="folder to use as $CVKIT_DATA")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a cell may run")
    args = parser.parse_args(argv)
    if args.data:
        os.environ["CVKIT_DATA"] = str(Path(args.data).resolve())
    # the tiny runs' checkpoints go under --out, not into notebooks/checkpoints/ beside real full-profile runs
    os.environ.setdefault("CVKIT_OUTPUT", str((Path(args.out) / "outputs").resolve()))
    rows = []
    for name in args.names or list(TINY):
        path = ROOT / "notebooks" / f"{name}.ipynb"
        result = run_notebook(path, args.out, "full", parameters={"FULL": TINY[name]}, cell_timeout=args.timeout)
        failed_cell = None
        if not result.ok and result.output and Path(result.output).exists():
            cells = json.loads(Path(result.output).read_text())["cells"]
            failed_cell = next(
                (i for i, c in enumerate(cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))),
                None,
            )
        reached_checks = (
            result.ok or failed_cell is not None and failed_cell >= checks_cell(path) + 1
        )  # +1: papermill's injected cell
        rows.append(
            dict(
                name=name,
                status=result.status,
                seconds=round(result.seconds, 1),
                reached_checks=reached_checks,
                message=result.message.splitlines()[0][:200] if result.message else "",
            )
        )
        print(
            f"{name:36s} {result.status:7s} {result.seconds:6.1f} s  reached Checks: {reached_checks}  {rows[-1]['message']}",
            flush=True,
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "smoke.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["reached_checks"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
