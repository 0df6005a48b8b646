"""Run lecture notebooks' full profile through ``cvkit run``, ``--jobs`` at a time, each in its own process group,
and kill whatever still runs at ``--deadline`` (seconds since the epoch). One ``cvkit run --out WORK/runs/NAME`` per
notebook; its log in ``WORK/logs/NAME.log``, and ``WORK/logs/NAME.killed`` (its seconds) when it was killed.

Order: the longest notebooks first (to see their first epochs), then the rest by their full run on 2 CPU cores,
shortest first (benchmarks/README.md), so that the most notebooks finish before the deadline.

With ``--smoke`` each notebook runs ``ci/full_smoke.py NAME`` instead: the full profile's code paths with tiny
sizes, so that every cell runs on the GPU in about a minute (its ``smoke.json`` says whether it reached the Checks
cell; the full-profile accuracy bars are expected to fail there).

Usage: ``python ci/gpu_check/pool.py --deadline EPOCH_SECONDS --work DIR [--jobs 16] [--only NAME,NAME] [--smoke]``
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

LONG = ["04_cnn_architectures", "11_4_ssl_cpc_dae_tracking", "11_3_ssl_masked_modeling", "12_diffusion"]
CPU_SECONDS = {  # the full profile on 2 CPU cores, benchmarks/README.md
    "00_what_a_computer_sees": 213,
    "01_learning_as_optimization": 58,
    "02_convolution": 42,
    "03_cnn_building_blocks": 115,
    "03_cnn_building_blocks_2_weight_normalization": 200,
    "05_seeing_inside_cnns": 808,
    "06_attention_vit": 1373,
    "07_hierarchical_transformers": 220,
    "07_hierarchical_transformers_2_swin_v2_maxvit": 1190,
    "08_object_detection": 152,
    "08_object_detection_2_faster_rcnn": 130,
    "08_object_detection_3_detr": 140,
    "09_segmentation": 522,
    "09_segmentation_2_mask_rcnn": 292,
    "10_1_captioning": 1041,
    "10_2_clip_vision_language": 1289,
    "10_3_vqa": 560,
    "11_1_ssl_pretext_tasks": 2790,
    "11_2_ssl_contrastive": 2828,
    "12_autoencoders_gans": 4097,
    "12_autoencoders_gans_2_cyclegan_style": 2671,
    "12_diffusion_2_latent": 7050,
    "13_segment_anything": 1146,
    "13_segment_anything_2_unified_models": 1070,
}


def order() -> list[str]:
    """Every lecture notebook's name, in the order they start."""
    names = sorted(p.stem for p in Path("notebooks").glob("*.ipynb"))
    rest = sorted((n for n in names if n not in LONG), key=lambda n: CPU_SECONDS.get(n, 10**6))
    return [n for n in LONG if n in names] + rest


def kill(proc: subprocess.Popen) -> None:
    """Kill a ``cvkit run`` and everything it started (the kernel too)."""
    try:
        import psutil

        children = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - gone already, or no psutil
        children = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    for child in children:
        try:
            child.kill()
        except Exception:  # noqa: BLE001, S110 - ended meanwhile
            pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deadline", type=float, required=True)
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", default="", help="comma-separated notebook names (default: all)")
    ap.add_argument(
        "--smoke", action="store_true", help="run ci/full_smoke.py (tiny sizes) instead of the full profile"
    )
    a = ap.parse_args()
    work = Path(a.work)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    queue = order()
    if a.only:
        queue = [n for n in queue if n in a.only.split(",")]
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    t0 = time.time()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    while (queue or running) and time.time() < a.deadline:
        while queue and len(running) < a.jobs:
            name = queue.pop(0)
            if a.smoke:
                command = [sys.executable, "ci/full_smoke.py", name, "--out", str(work / "runs" / name)]
            else:
                command = [sys.executable, "-m", "cvkit", "run", "--profile", "full", f"notebooks/{name}.ipynb"]
                command += ["--out", str(work / "runs" / name), "--timeout", "3000"]
            with open(work / "logs" / f"{name}.log", "w") as log:
                proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            running[name] = (proc, time.time())
            print(f"[{time.time() - t0:6.1f}] start {name}", flush=True)
        for name, (proc, started) in list(running.items()):
            if proc.poll() is not None:
                print(
                    f"[{time.time() - t0:6.1f}] end   {name} rc={proc.returncode} after {time.time() - started:.1f} s"
                )
                del running[name]
        time.sleep(0.5)
    for name, (proc, started) in running.items():
        kill(proc)
        print(f"[{time.time() - t0:6.1f}] KILLED {name} after {time.time() - started:.1f} s", flush=True)
        (work / "logs" / f"{name}.killed").write_text(f"{time.time() - started:.1f}")
    for name in queue:
        print(f"never started: {name}", flush=True)


if __name__ == "__main__":
    main()
