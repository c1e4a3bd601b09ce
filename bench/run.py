"""Benchmarks that print numbers: `python bench/run.py --json` prints one JSON object with every figure.

Each lens adds its keys here. Not timed tests: run it on a quiet machine and quote the output.
`--only 224` runs the keys measured on an ImageNet-sized model (torchvision ResNet-18, random weights, 3x224x224).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import torch  # noqa: E402

from sia_core.data.base import ImageDataset  # noqa: E402
from sia_core.data.catalog import load_dataset  # noqa: E402
from sia_core.models.registry import load_model  # noqa: E402
from sia_core.runtime import keep_freed_memory_for_reuse, one_thread  # noqa: E402

DEFAULT_MODEL = "fmnist-standard"


def median_ms(function, repeats: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def predict_latency_ms() -> float:
    """The default model classifying one image, as the app does (eval mode, inference mode, softmax)."""
    model = load_model(DEFAULT_MODEL)
    image = load_dataset("fashion-mnist-subset").images[:1]
    return median_ms(lambda: model.predict_proba(image), repeats=300)


APP_READY_RUNS = 3  # a start-up on a shared two-core machine varies by seconds: the median, and every run


def app_ready_seconds() -> dict[str, object]:
    """From `streamlit run app.py` (as scripts/start_app.sh starts it) to the home page showing predictions in
    Chromium: the median of fresh starts, and each run (nothing without Chromium)."""
    from tests.app_server import CHROMIUM_FLAGS, PREDICTION_SELECTOR, chromium_path, running_app, wait_for_health

    executable = chromium_path()
    if executable is None:
        return {}
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            for _ in range(APP_READY_RUNS):
                started = time.perf_counter()
                with running_app() as url:
                    wait_for_health(url)
                    page = browser.new_context().new_page()
                    page.goto(url, wait_until="domcontentloaded")
                    page.wait_for_selector("text=true:", timeout=180_000)
                    page.wait_for_selector(PREDICTION_SELECTOR, timeout=180_000)
                    runs.append(round(time.perf_counter() - started, 3))
                    page.context.close()
        finally:
            browser.close()
    return {"app_ready_seconds": statistics.median(runs), "app_ready_seconds_runs": runs}


STARTUP_IMPORTS = {"streamlit_with_plotly": "import streamlit.web.cli",  # Streamlit imports plotly when it is there
                   "torch": "import torch", "pandas_pyarrow": "import pandas, pyarrow",
                   "engine_and_rest": "import sia_app.preload"}


def startup_import_seconds() -> dict[str, float]:
    """Where a server start's imports go: each group imported in turn in a fresh interpreter (median of 3), as
    sia_app/serve.py and sia_app/preload.py import them."""
    code = ("import json, time; times = {}\n"
            + "".join(f"t = time.perf_counter(); {statement}; times[{name!r}] = time.perf_counter() - t\n"
                      for name, statement in STARTUP_IMPORTS.items())
            + "print(json.dumps(times))")
    runs = []
    for _ in range(3):
        output = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                check=True).stdout
        runs.append(json.loads(output.strip().splitlines()[-1]))
    return {f"startup_import_seconds_{name}": statistics.median(run[name] for run in runs)
            for name in STARTUP_IMPORTS}


FLOOR_SCRIPTS = {  # the least any Streamlit page costs here, to read the app's own first paints against
    "text": "import streamlit as st\nst.title('Floor')\nst.write('true: text')\n",
    "one_plotly_chart": ("import plotly.graph_objects as go\nimport streamlit as st\nst.title('Floor')\n"
                         "st.plotly_chart(go.Figure(go.Bar(x=list('abcdefghij'), y=list(range(10)))))\n"),
}


def first_paint_floor_seconds() -> dict[str, float]:
    """A bare Streamlit page (a title and a line), and one with a single ten-bar plotly chart, served by plain
    `streamlit run` on this machine: from navigation to drawn in a fresh Chromium context (median of 3), and from
    `streamlit run` to the first session's page drawn (one start each)."""
    import tempfile

    from tests.app_server import CHROMIUM_FLAGS, free_port, require_chromium, wait_for_health
    from playwright.sync_api import sync_playwright

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_FLAGS)
        try:
            for name, source in FLOOR_SCRIPTS.items():
                script = Path(folder) / f"{name}.py"
                script.write_text(source)
                port = free_port()
                launched = time.perf_counter()
                server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.port",
                                           str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                                           "--browser.gatherUsageStats", "false"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    url = f"http://127.0.0.1:{port}"
                    wait_for_health(url)
                    selector = ".js-plotly-plot" if "plotly" in name else "text=true: text"
                    runs = []
                    for attempt in range(4):  # the first warms the server
                        page = browser.new_context().new_page()
                        started = time.perf_counter()
                        page.goto(url, wait_until="domcontentloaded")
                        page.wait_for_selector(selector, timeout=120_000)
                        if attempt:
                            runs.append(time.perf_counter() - started)
                        else:  # what app_ready_seconds measures, for a page that needs nothing but Streamlit
                            timings[f"app_ready_floor_seconds_{name}"] = time.perf_counter() - launched
                        page.context.close()
                    timings[f"first_paint_floor_seconds_{name}"] = statistics.median(runs)
                finally:
                    server.terminate()
                    server.wait(timeout=15)
        finally:
            browser.close()
    return timings


# what each page shows first, on a warm server: the precomputed figure (or the live one, for explore and home)
FIRST_PAINT = {"home": "text=true:", "tour": "text=Try this:", "sia_explore": ".js-plotly-plot",
               "sia_diagnosis": ".js-plotly-plot", "regions": ".js-plotly-plot", "margins": ".js-plotly-plot",
               "sia_robustify": ".js-plotly-plot", "features": "text=What the sets look like"}


def first_paint_seconds() -> dict[str, float]:
    """Per page, from navigation to its first result drawn in Chromium, on a warm server (each page opened once
    before, by another session, so models and shipped results are in the cache); a fresh browser context (no cached
    scripts) each time; the median of three rounds over the pages."""
    from tests.app_server import browser_on_app

    runs: dict[str, list[float]] = {path: [] for path in FIRST_PAINT}
    with browser_on_app() as (browser, url):
        for round_ in range(4):  # the first warms the server: models, datasets, shipped results
            for path, selector in FIRST_PAINT.items():
                page = browser.new_context().new_page()
                started = time.perf_counter()
                page.goto(f"{url}/{'' if path == 'home' else path}", wait_until="domcontentloaded")
                page.wait_for_selector(selector, timeout=240_000)
                if round_:
                    runs[path].append(time.perf_counter() - started)
                page.context.close()
    return {f"first_paint_seconds_{path}": statistics.median(times) for path, times in runs.items()}


PAGE_TITLES = {"tour": "Guided tour", "sia_explore": "Semantic Image Attack — explore",
               "sia_diagnosis": "Semantic Image Attack — diagnosis", "sia_robustify": "Semantic attack — robustify",
               "regions": "Region of Importance vs Region of Attack", "margins": "Margin consistency",
               "features": "Robust vs non-robust features"}


def navigation_paint_seconds() -> dict[str, float]:
    """Per page, from a click on its link in the sidebar to its title and first result drawn, in one browser
    session that has the app open (a person moving between lenses: the page's JavaScript is already loaded); the
    median of three rounds over the pages."""
    from tests.app_server import browser_on_app

    runs: dict[str, list[float]] = {path: [] for path in PAGE_TITLES}
    with browser_on_app() as (browser, url):
        page = browser.new_context().new_page()
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector(FIRST_PAINT["home"], timeout=240_000)
        for round_ in range(4):  # the first round warms the server's caches and loads each page's scripts
            for path, title in PAGE_TITLES.items():
                started = time.perf_counter()
                page.locator(f"[data-testid=stSidebarNav] a[href$='/{path}']").click()
                page.wait_for_selector(f"h1:has-text('{title}')", timeout=240_000)
                page.locator(f"[data-testid=stMain] >> {FIRST_PAINT[path]}").first.wait_for(timeout=240_000)
                if round_:
                    runs[path].append(time.perf_counter() - started)
    return {f"navigation_paint_seconds_{path}": statistics.median(times) for path, times in runs.items()}


def slider_update_ms() -> float:
    """What one slider change costs the explore page: attribute edit, prediction, bar figure and image."""
    from sia_core.figures import probability_bars, to_pil
    from sia_core.semantics import apply_attributes

    model = load_model(DEFAULT_MODEL)
    image = load_dataset("fashion-mnist-subset").images[:1]
    params = {"rotation": 7.5, "translate_x": 1.0, "translate_y": -0.5, "scale": 0.05, "brightness": 0.1,
              "contrast": 0.2, "gamma": -0.1, "blur": 0.3}

    def update() -> None:
        with torch.inference_mode():
            edited = apply_attributes(image, params)
            probabilities = torch.softmax(model.logits(edited)[0], 0)
        probability_bars(probabilities, model.class_names, true_label=0)
        to_pil(edited, upscale=6)

    return median_ms(update, repeats=100, warmup=5)


def sia_single_image_seconds() -> float:
    """The default SIA (30 steps, all attributes, eps_linf 2/255) on one image of the default model."""
    from sia_core.attacks.semantic import SemanticAttack

    model = load_model(DEFAULT_MODEL)
    data = load_dataset("fashion-mnist-subset")
    attack = SemanticAttack()
    return median_ms(lambda: attack(model, data.images[:1], data.labels[:1]), repeats=7, warmup=2) / 1000


def sia_step_cost_ratio_vs_pgd() -> dict[str, float]:
    """Cost of 30 SIA steps over 30 PGD steps, same model and batch of 128 images, one thread: as CPU time of the
    thread (the key itself: what the step costs, whatever else holds the machine's cores) and as wall time (`_wall`:
    the same on a quiet machine, inflated by whatever runs beside it on a busy one)."""
    from sia_core.attacks import PGD
    from sia_core.attacks.semantic import SemanticAttack

    model = load_model(DEFAULT_MODEL)
    data = load_dataset("fashion-mnist-subset")
    x, y = data.images[:128], data.labels[:128]
    sia, pgd = SemanticAttack(steps=30), PGD(eps=2 / 255, steps=30)
    sia(model, x, y), pgd(model, x, y)  # warm-up
    cpu: dict[str, list[float]] = {"sia": [], "pgd": []}
    wall: dict[str, list[float]] = {"sia": [], "pgd": []}
    with one_thread():  # the thread's CPU time is then the computation's whole cost
        for _ in range(9):  # interleaved, so drift in machine load hits both alike
            for name, attack in (("sia", sia), ("pgd", pgd)):
                started, started_cpu = time.perf_counter(), time.thread_time()
                attack(model, x, y)
                cpu[name].append(time.thread_time() - started_cpu)
                wall[name].append(time.perf_counter() - started)
    return {"sia_step_cost_ratio_vs_pgd": statistics.median(cpu["sia"]) / statistics.median(cpu["pgd"]),
            "sia_step_cost_ratio_vs_pgd_wall": statistics.median(wall["sia"]) / statistics.median(wall["pgd"])}


def sia_at_epoch_cost_ratio_vs_pgd_at() -> float:
    """Training time of the shipped SIA-AT recipe (half of each batch: 5 SIA steps at 4/255) over the shipped
    PGD-AT recipe (the whole batch: 5 PGD steps at 0.1), 12 batches of 128 each, interleaved, same start: the
    per-epoch cost ratio (an epoch is the same number of such batches for both)."""
    from sia_core.models.architectures import reinitialize
    from sia_core.training import TrainConfig, train

    data = load_dataset("fashion-mnist-subset")
    recipes = {"sia": TrainConfig(recipe="sia", eps=4 / 255, attack_steps=5, steps=12),
               "pgd": TrainConfig(recipe="pgd", eps=0.1, attack_steps=5, steps=12)}
    seconds: dict[str, list[float]] = {"sia": [], "pgd": []}
    for repeat in range(4):  # the first round warms up and is dropped
        for name, config in recipes.items():
            model = load_model(DEFAULT_MODEL)
            reinitialize(model.network, torch.Generator().manual_seed(0))
            started = time.perf_counter()
            train(model, data, config)
            if repeat:
                seconds[name].append(time.perf_counter() - started)
    return statistics.median(seconds["sia"]) / statistics.median(seconds["pgd"])


def cifar10_train_images_per_second() -> dict[str, float]:
    """Training throughput on 32x32 RGB batches of 128 (crop-flip augmentation, Adam), one thread per process as
    the training scripts run: the standard recipe and FGSM with random start, for each architecture that could
    train the CIFAR-10 models. Chooses the architecture and the number of epochs that fit the time at hand."""
    from sia_core.models.architectures import build_architecture
    from sia_core.models.wrapper import ClassifierWrapper
    from sia_core.training import TrainConfig, train

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(128 * 8, 3, 32, 32, generator=generator)
    data = ImageDataset("random-cifar", images, torch.randint(0, 10, (len(images),), generator=generator),
                        tuple(str(i) for i in range(10)))
    figures = {}
    for architecture in ("resnet9-slim", "small-cnn", "tiny-cnn"):
        for recipe in ("standard", "fgsm-rs"):
            model = ClassifierWrapper(build_architecture(architecture, 3, 32, 10), mean=(0.5,) * 3, std=(0.25,) * 3,
                                      input_shape=(3, 32, 32), class_names=data.class_names, model_id=architecture)
            config = TrainConfig(recipe=recipe, eps=8 / 255, steps=8, augment="crop-flip")
            train(model, data.subset(slice(0, 256)), TrainConfig(recipe=recipe, eps=8 / 255, steps=2))  # warm-up
            started = time.perf_counter()
            train(model, data, config)
            figures[f"cifar10_train_img_per_s_{architecture}_{recipe}"] = round(
                len(images) / (time.perf_counter() - started), 1)
    return figures


def regions_panel_seconds() -> float:
    """The RoI vs RoA one-image panel: occlusion RoI + effect-weighted PGD RoA + masks and metrics."""
    from sia_core.regions.panel import region_panel

    model = load_model(DEFAULT_MODEL)
    data = load_dataset("fashion-mnist-subset")
    image, label = data.images[:1], int(data.labels[0])
    return median_ms(lambda: region_panel(model, image, label), repeats=15, warmup=3) / 1000


def _margin_timings() -> dict[str, float]:
    """Input margins (L-inf, DeepFool + PGD bisection) and logit margins for the same 1,000 images."""
    from sia_core.margins import margin_study

    model = load_model(DEFAULT_MODEL)
    data = load_dataset("fashion-mnist-subset")
    study = margin_study(model, data.images[:1000], data.labels[:1000])
    return {"input_margins_seconds_n1000": study.seconds_input_margins,
            "logit_margins_seconds_n1000": study.seconds_logit_margins,
            "margin_speedup_ratio": study.seconds_input_margins / study.seconds_logit_margins}


def _margins_torchrun() -> dict[str, float]:
    """The margin study of the default model on 1,000 embedded images, as one process and as two on torchrun
    (gloo, loopback): the study's own seconds (logit + input margins; on torchrun the slowest process's), and the
    speed-up. Each process gets one thread, as torchrun gives it."""
    import subprocess

    from tests.app_server import free_port

    study = ["margins", "--model", DEFAULT_MODEL, "--data", "fashion-mnist-subset", "--n", "1000", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    seconds = {}
    for name, launcher in (("single", [sys.executable, "-m", "sia_core"]),
                           ("torchrun2", [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                                          "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
                                          "-m", "sia_core", "--"])):
        done = subprocess.run([*launcher, *study], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                              check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        seconds[name] = result["seconds_logit_margins"] + result["seconds_input_margins"]
    return {"margins_seconds_n1000_single_process": seconds["single"],
            "margins_seconds_n1000_torchrun2": seconds["torchrun2"],
            "margins_torchrun2_speedup": seconds["single"] / seconds["torchrun2"]}


# --- ImageNet-sized: torchvision ResNet-18 with random weights (no download) on Shapes images upsampled to 224 px

def _resnet18_224():
    """The model a user brings: torchvision ResNet-18 behind the head split and the one wrapper."""
    import torchvision

    from sia_core.models.user_models import HeadSplit
    from sia_core.models.wrapper import ClassifierWrapper

    torch.manual_seed(0)
    network = HeadSplit(torchvision.models.resnet18(weights=None), "fc")
    return ClassifierWrapper(network, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), input_shape=(3, 224, 224),
                             class_names=tuple(str(i) for i in range(1000)), model_id="torchvision:resnet18").eval()


def _images_224(n: int) -> torch.Tensor:
    """`n` generated Shapes test images (RGB, 32 px) upsampled bilinearly to 224 px, in [0, 1]."""
    images = load_dataset("shapes", n=n).images
    upsampled = torch.nn.functional.interpolate(images, size=(224, 224), mode="bilinear", align_corners=False)
    return upsampled.clamp(0, 1)


def _slider_update_ms_224(model, image: torch.Tensor, true_label: int) -> float:
    """One slider change at 224 px: the same slider values as `slider_update_ms` (pixel ones scaled to the image)
    plus the colour sliders, prediction, bars and image."""
    from sia_core.figures import display_upscale, probability_bars, to_pil
    from sia_core.scaling import pixel_scale
    from sia_core.semantics import apply_attributes

    scale = pixel_scale(image.shape)  # 7: shift and blur ranges are 7 times wider at 224 px
    params = {"rotation": 7.5, "translate_x": 1.0 * scale, "translate_y": -0.5 * scale, "scale": 0.05,
              "brightness": 0.1, "contrast": 0.2, "gamma": -0.1, "saturation": 0.2, "hue": 0.3, "tint_red": 0.05,
              "blur": 0.3 * scale}

    def update() -> None:
        with torch.inference_mode():
            edited = apply_attributes(image, params)
            probabilities = torch.softmax(model.logits(edited)[0], 0)
        probability_bars(probabilities, model.class_names, true_label=true_label)
        to_pil(edited, upscale=display_upscale(edited.shape))

    return median_ms(update, repeats=30, warmup=3)


def slider_update_ms_224() -> float:
    """`slider_update_ms` at 224 px on torchvision's resnet18 (random weights)."""
    return _slider_update_ms_224(_resnet18_224(), _images_224(1), 0)


def sia_single_image_seconds_224() -> float:
    """`sia_single_image_seconds` at 224 px: the default SIA (30 steps, all RGB attributes, eps_linf 2/255)."""
    from sia_core.attacks.semantic import SemanticAttack

    model, image = _resnet18_224(), _images_224(1)
    label = model.logits(image).argmax(1)
    attack = SemanticAttack()
    return median_ms(lambda: attack(model, image, label), repeats=3, warmup=1) / 1000


def regions_panel_seconds_224() -> float:
    """`regions_panel_seconds` at 224 px: occlusion RoI + effect-weighted PGD RoA, the page's defaults."""
    from sia_core.regions.panel import region_panel

    model, image = _resnet18_224(), _images_224(1)
    label = int(model.logits(image).argmax(1))
    return median_ms(lambda: region_panel(model, image, label), repeats=3, warmup=1) / 1000


def input_margins_seconds_n100_224() -> float:
    """`input_margins_seconds_n1000` at 224 px on 100 images: the study the margins page runs (L-inf, default
    estimator, which picks the large-image search)."""
    from sia_core.margins import margin_study

    model, images = _resnet18_224(), _images_224(100)
    return margin_study(model, images, model.logits(images, batch_size=16).argmax(1)).seconds_input_margins


# --- the ImageNet world: the shipped efficientnet-lite0 on the embedded gallery's photos (224 px)

def _lite0():
    from sia_core.resolve import resolve

    subject = resolve("efficientnet-lite0")
    return subject.model, subject.test_set.images[:1], subject.test_set.labels[:1]


def slider_update_ms_lite0() -> float:
    """`slider_update_ms_224` on efficientnet-lite0 and the first gallery photo (attribute edit, forward, bars)."""
    model, image, label = _lite0()
    return _slider_update_ms_224(model, image, int(label[0]))


def sia_single_image_seconds_lite0() -> float:
    """The default SIA (30 steps, every RGB attribute, eps_linf 2/255) on efficientnet-lite0, one gallery photo."""
    from sia_core.attacks.semantic import SemanticAttack

    model, image, label = _lite0()
    attack = SemanticAttack()
    return median_ms(lambda: attack(model, image, label), repeats=3, warmup=1) / 1000


def regions_panel_seconds_lite0() -> float:
    """The RoI vs RoA panel (occlusion RoI + effect-weighted PGD RoA) on efficientnet-lite0, one gallery photo."""
    from sia_core.regions.panel import region_panel

    model, image, label = _lite0()
    return median_ms(lambda: region_panel(model, image, int(label[0])), repeats=3, warmup=1) / 1000


def input_margin_seconds_lite0() -> float:
    """One photo's input margin (L-inf, the default estimator) on efficientnet-lite0."""
    from sia_core.margins import margin_study

    model, image, label = _lite0()
    return margin_study(model, image, label).seconds_input_margins


def margin_tightness_vs_fab() -> dict[str, float]:
    """Our input margins against FAB (torchattacks, 100 steps, 1 restart) on the same correctly classified test
    images, timed in turns in one process: per model and norm, the median ratio ours / FAB (at most 1.00: ours is
    as tight), the share of images where ours is smaller, and FAB's time over ours."""
    from sia_core.margins.reference import compare_with_fab
    from sia_core.resolve import resolve

    results: dict[str, float] = {}
    for model_id, data, n in (("fmnist-robust", "fashion-mnist-subset", 200), ("cifar10-robust", "cifar10-subset", 100)):
        subject = resolve(model_id, data, n=1000)
        model, test = subject.model, subject.test_set
        correct = (model.logits(test.images).argmax(1) == test.labels).nonzero().squeeze(1)[:n]
        for norm in ("linf", "l2"):
            comparison = compare_with_fab(model, test.images[correct], norm)
            key = f"margin_vs_fab_{model_id.replace('-', '_')}_{norm}"
            results.update({f"{key}_median_ratio": comparison.median_ratio,
                            f"{key}_share_ours_smaller": comparison.share_ours_smaller,
                            f"{key}_speedup": comparison.speedup, f"{key}_n": comparison.n})
    return results


def _keypoint_world(model_id: str):
    """A keypoint model and the first image of its dataset with its reference points (as the app resolves them)."""
    from sia_core.resolve import resolve

    subject = resolve(model_id, n=8)
    return subject.model, subject.test_set.images[:1], subject.test_set.keypoints[:1]


def _keypoint_slider_update_ms(model_id: str) -> float:
    """One slider change on a keypoint model, as the explore page does it: the attribute edit, the predicted points,
    the reference moved with the image, the NME, and the figure with both sets of points."""
    from sia_core.figures import keypoint_figure
    from sia_core.semantics import apply_attributes, move_points

    model, image, reference = _keypoint_world(model_id)
    params = {name: torch.tensor([value]) for name, value in (
        ("rotation", 7.5), ("translate_x", 1.0), ("translate_y", -0.5), ("scale", 0.05), ("brightness", 0.1),
        ("contrast", 0.2), ("gamma", -0.1), ("saturation", 0.2), ("hue", 0.3), ("tint_red", 0.05), ("blur", 0.3))}

    def update() -> None:
        with torch.inference_mode():
            edited = apply_attributes(image, params)
            points = model.points(edited)
            moved = move_points(reference, image, params)
            model.task.errors(points, moved)
        keypoint_figure(edited, {"reference": model.task.landmarks(moved)[0], "predicted": points[0]},
                        model.point_names)

    return median_ms(update, repeats=30, warmup=3)


def slider_update_ms_keypoints() -> dict[str, float]:
    """`_keypoint_slider_update_ms` on O-Net (48 px face crop) and the Shapes keypoint model (32 px)."""
    return {f"slider_update_ms_keypoints_{name}": _keypoint_slider_update_ms(model_id)
            for name, model_id in (("onet", "mtcnn-onet"), ("shapes", "shapes-keypoints"))}


def sia_seconds_keypoints() -> dict[str, float]:
    """The default 30-step SIA on one image of O-Net and of the Shapes keypoint model."""
    from sia_core.attacks.semantic import SemanticAttack

    seconds = {}
    for name, model_id in (("onet", "mtcnn-onet"), ("shapes", "shapes-keypoints")):
        model, image, reference = _keypoint_world(model_id)
        attack = SemanticAttack(steps=30)
        seconds[f"sia_30_steps_seconds_keypoints_{name}"] = median_ms(lambda: attack(model, image, reference),
                                                                      repeats=5, warmup=1) / 1000
    return seconds


def diagnosis_seconds_cifar10() -> dict[str, float]:
    """The diagnosis page's default run (256 images, 2/255, 30 steps, every attribute) on cifar10-standard and the
    embedded CIFAR-10 subset, on one thread, once (it takes minutes): its CPU time in all and per part (the 13
    one-attribute searches, the four attacks, PGD's search for SIA's SSIM), and its wall time."""
    from sia_core import resolve as resolver
    from sia_core.diagnosis import DiagnosisConfig, diagnose

    subject = resolver.resolve("cifar10-standard", "cifar10-subset")
    marks: list[tuple[str, float]] = []
    with one_thread():  # the thread's CPU time is then the computation's whole cost
        started, wall = time.thread_time(), time.perf_counter()
        diagnose(subject.loaded.model, subject.test_set, DiagnosisConfig(),
                 progress=lambda done, total, info: marks.append((info.get("stage", ""), time.thread_time())))
        seconds, wall = time.thread_time() - started, time.perf_counter() - wall
    ends = [end for _, end in marks]
    costs = [end - start for start, end in zip([started, *ends], ends)]
    search = sum(cost for (stage, _), cost in zip(marks, costs) if stage.startswith("sensitivity"))
    matched = costs[-1]
    return {"diagnosis_seconds_cifar10": seconds, "diagnosis_seconds_cifar10_one_attribute_searches": search,
            "diagnosis_seconds_cifar10_attacks": seconds - search - matched,
            "diagnosis_seconds_cifar10_pgd_at_sias_ssim": matched, "diagnosis_seconds_cifar10_wall": wall}


BENCHMARKS = {
    "predict_latency_ms": predict_latency_ms,
    "app_ready_seconds": app_ready_seconds,
    "slider_update_ms": slider_update_ms,
    "sia_single_image_seconds": sia_single_image_seconds,
    "sia_step_cost_ratio_vs_pgd": sia_step_cost_ratio_vs_pgd,
    "sia_at_epoch_cost_ratio_vs_pgd_at": sia_at_epoch_cost_ratio_vs_pgd_at,
    "regions_panel_seconds": regions_panel_seconds,
    "cifar10_training": cifar10_train_images_per_second,  # one key per architecture and recipe
    "margins_n1000": _margin_timings,  # three keys from one run
    "margins_torchrun2": _margins_torchrun,  # one process against two on torchrun
    "startup_imports": startup_import_seconds,  # one key per group of libraries
    "first_paint": first_paint_seconds,  # one key per page
    "first_paint_floor": first_paint_floor_seconds,  # a bare Streamlit page and a one-chart page
    "navigation_paint": navigation_paint_seconds,  # one key per page
    "slider_update_ms_224": slider_update_ms_224,
    "sia_single_image_seconds_224": sia_single_image_seconds_224,
    "regions_panel_seconds_224": regions_panel_seconds_224,
    "input_margins_seconds_n100_224": input_margins_seconds_n100_224,
    "slider_update_ms_lite0": slider_update_ms_lite0,
    "sia_single_image_seconds_lite0": sia_single_image_seconds_lite0,
    "regions_panel_seconds_lite0": regions_panel_seconds_lite0,
    "input_margin_seconds_lite0": input_margin_seconds_lite0,
    "margin_tightness_vs_fab": margin_tightness_vs_fab,  # per model and norm: tightness, share, speed-up
    "slider_update_ms_keypoints": slider_update_ms_keypoints,  # O-Net and the Shapes keypoint model
    "sia_seconds_keypoints": sia_seconds_keypoints,  # the same two
    "diagnosis_seconds_cifar10": diagnosis_seconds_cifar10,  # in all and per part, one thread
}
# `--only 224` / `--only lite0` run these
GROUPS = {"224": [name for name in BENCHMARKS if name.endswith("_224")],
          "lite0": [name for name in BENCHMARKS if name.endswith("_lite0")]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS) + sorted(GROUPS),
                        help="run only these benchmarks (a group name, e.g. 224, stands for its keys)")
    args = parser.parse_args()
    keep_freed_memory_for_reuse()  # as the server and the CLI run
    results: dict[str, object] = {"torch_threads": torch.get_num_threads(),
                                  "device": "cuda" if torch.cuda.is_available() else "cpu"}
    chosen = [key for name in (args.only or BENCHMARKS) for key in GROUPS.get(name, [name])]
    for name in chosen:
        value = BENCHMARKS[name]()
        if isinstance(value, dict):
            results.update({key: round(item, 3) if isinstance(item, float) else item for key, item in value.items()})
        else:
            results[name] = round(value, 3) if isinstance(value, float) else value
    print(json.dumps(results) if args.json else "\n".join(f"{k}: {v}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
