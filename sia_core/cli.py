"""The command line: `python -m sia_core models|train|evaluate|predict|sia|regions|margins|features|build-subset ...`.

Every command that takes `--json` prints exactly one JSON object on stdout; progress goes to
stderr; a user error prints one clear line and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from sia_core.distributed import current_shard, init_from_environment, shutdown
from sia_core.errors import SiaError

Handler = Callable[[argparse.Namespace], dict[str, Any]]


def _stderr_progress(label: str) -> Callable[[int, int, dict], None]:
    def report(step: int, total: int, info: dict) -> None:
        if not current_shard().is_main:
            return
        details = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        print(f"[{label}] {step}/{total} {details}", file=sys.stderr, flush=True)
    return report


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {value}")
    return value


def _count(text: str) -> int:
    """argparse type of a count (images, epochs, steps): at least 1, so `--n 0` or `--n -5` is refused up front."""
    return _whole_number(text, 1)


def _count_or_zero(text: str) -> int:
    """argparse type of a count where 0 means "skip" (e.g. --pseudo-fit)."""
    return _whole_number(text, 0)


def _models(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.models.registry import list_model_cards

    return {"models": [card.to_dict() for card in list_model_cards()]}


def _test_set_for(dataset_name: str, data_dir: Optional[str], n: Optional[int],
                  image_shape: Optional[tuple[int, int, int]] = None):
    """The test split a model of `dataset_name` is evaluated on (as `image_shape`, the model's input, when given),
    or the dataset's shipped fallback (Fashion-MNIST's embedded subset) when no folder was given and the default
    one is absent."""
    from sia_core.data.catalog import load_dataset, resolve_dataset

    entry, root = resolve_dataset(dataset_name, data_dir)
    default_root_absent = root is not None and root == entry.traits.get("default_root") and not root.exists()
    if "test_fallback" in entry.traits and default_root_absent:
        return load_dataset(entry.traits["test_fallback"], n=n, image_shape=image_shape)
    return _split(dataset_name, "test", data_dir, image_shape, n=n)


def _model_options(args: argparse.Namespace):
    from sia_core.models.user_models import ModelOptions

    return ModelOptions.parse(weights=args.weights, input_shape=args.input_shape, mean=args.mean, std=args.std,
                              classes=args.classes, download=args.download, random_init=args.random_init)


def _load(args: argparse.Namespace, n: Optional[int] = None, reference: Optional[str] = None):
    """The model a command names (any spec, with its options) and the test set it runs on: --data, else the
    dataset on the model's card. Returns (LoadedModel, test set, dataset spec)."""
    from sia_core.models.registry import load_model_and_card, with_dataset_class_names
    from sia_core.models.wrapper import require_fit

    loaded = load_model_and_card(reference or args.model, _model_options(args))
    dataset_spec = getattr(args, "data", None) or loaded.card.dataset
    if not dataset_spec:
        raise SiaError(f"{loaded.card.id} has no dataset of its own: pass --data SPEC, e.g. mnist:/path/to/data, "
                       "imagefolder:/path/to/images or npz:/path/to/file.npz.")
    test_set = _test_set_for(dataset_spec, args.data_dir, n, loaded.model.input_shape)
    loaded = with_dataset_class_names(loaded, test_set.class_names)
    require_fit(loaded.model, test_set)
    return loaded, test_set, dataset_spec


def _evaluation_entry(model, test_set, attack_name: Optional[str], eps: float, steps: int,
                      progress_label: str) -> dict[str, Any]:
    from sia_core.attacks import ATTACKS
    from sia_core.evaluation import evaluate

    attack = ATTACKS.build(attack_name, eps=eps, steps=steps) if attack_name else None
    report = evaluate(model, test_set, attack=attack, progress=_stderr_progress(progress_label))
    return {"test_set": test_set.name, "test_source": test_set.source, "n": report.n,
            "clean_accuracy": round(report.clean_accuracy, 4),
            "robust_accuracy": None if report.robust_accuracy is None else round(report.robust_accuracy, 4),
            "attack": attack_name, "eps": eps if attack_name else None, "steps": steps if attack_name else None}


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.data.catalog import load_dataset
    from sia_core.models.registry import ModelCard, build_model, require_model_id, round_weights, save_model
    from sia_core.paths import MODELS_DIR
    from sia_core.training import TrainConfig, channel_statistics, train

    require_model_id(args.id)
    config = TrainConfig(recipe=args.recipe, epochs=args.epochs, batch_size=args.batch_size,
                         learning_rate=args.lr, weight_decay=args.weight_decay, eps=args.eps, attack_steps=args.attack_steps,
                         eps_warmup_epochs=args.eps_warmup_epochs, seed=args.seed, trades_beta=args.trades_beta,
                         augment=args.augment, attack_step_fraction=args.attack_step_fraction)
    train_set = load_dataset(args.dataset, "train", root=args.data_dir, spurious=args.spurious,
                             spurious_strength=args.spurious_strength, n=args.train_n, seed=args.seed)
    mean, std = channel_statistics(train_set)
    card = ModelCard(id=args.id, dataset=args.dataset, architecture=args.architecture,
                     input_shape=train_set.image_shape, class_names=train_set.class_names,
                     mean=tuple(mean), std=tuple(std))
    model = build_model(card)
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    history = train(model, train_set, config, progress=_stderr_progress(f"train {args.id}"), checkpoint=checkpoint)
    round_weights(model, args.weights_dtype)  # measured as shipped
    seconds = sum(history.epoch_seconds)  # every epoch's own time, those before a resume included
    # the card's first evaluation is its headline: the --eval-data sets in order, else the training data's test split
    test_sets = ([_test_set_for(spec, None, args.eval_n, train_set.image_shape) for spec in args.eval_data]
                 if args.eval_data else [_test_set_for(args.dataset, args.data_dir, args.eval_n)])
    attacked = len(test_sets) if args.eval_attack_sets is None else args.eval_attack_sets
    evaluations = [_evaluation_entry(model, test_set, args.eval_attack if i < attacked else None, args.eval_eps,
                                     args.eval_steps, "evaluate") for i, test_set in enumerate(test_sets)]
    card = ModelCard(
        **{**card.__dict__,
           "training": {**config.__dict__, "train_set": train_set.name, "train_source": train_set.source,
                        "train_n": len(train_set), "seconds": round(seconds, 1), "history": history.to_dict(),
                        "weights_dtype": args.weights_dtype,
                        "command": "python -m sia_core " + shlex.join(args.argv)},
           "evaluations": tuple(evaluations), "description": args.description})
    out = Path(args.out) if args.out else MODELS_DIR / args.id
    save_model(model, card, out, dtype=args.weights_dtype)
    return {"model": args.id, "out": str(out), "seconds": round(seconds, 1), "evaluations": evaluations}


def _compact(args: argparse.Namespace) -> dict[str, Any]:
    """Store a shipped model's weights in a smaller precision and re-measure every evaluation on its card with the
    rounded weights (same test set, attack, eps and steps); the card keeps the figures measured before."""
    from sia_core.models.registry import ModelCard, load_model_and_card, model_folder, round_weights, save_model

    loaded = load_model_and_card(args.model)
    card, model = loaded.card, loaded.model
    if (card.training or {}).get("weights_dtype", "float32") == args.dtype:
        raise SiaError(f"{card.id} is already stored in {args.dtype}.")
    round_weights(model, args.dtype)
    evaluations = []
    for before in card.evaluations:
        test_set = _test_set_for(card.dataset, None, None, model.input_shape)
        if test_set.name != before["test_set"] or len(test_set) < before["n"]:
            raise SiaError(f"{card.id}: cannot re-create its test set {before['test_set']} ({before['n']} images) "
                           f"here; found {test_set.name} ({len(test_set)}).")
        test_set = test_set.subset(slice(0, before["n"]))
        evaluations.append(_evaluation_entry(model, test_set, before.get("attack"), before.get("eps") or 0.0,
                                             before.get("steps") or 20, f"evaluate {card.id}"))
    training = {**(card.training or {}), "weights_dtype": args.dtype,
                "compacted_by": "python -m sia_core " + shlex.join(args.argv),
                "evaluations_before_compaction": list(card.evaluations)}
    compacted = ModelCard(**{**card.__dict__, "training": training, "evaluations": tuple(evaluations)})
    save_model(model, compacted, model_folder(args.model), dtype=args.dtype)
    return {"model": card.id, "dtype": args.dtype, "evaluations": evaluations,
            "before": list(card.evaluations)}


def _names(text: Optional[str]) -> Optional[tuple[str, ...]]:
    return tuple(part.strip() for part in text.split(",") if part.strip()) if text else None


def _robustify_transfer(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.robustify import TransferConfig, transfer_table

    specs = _names(args.models) or ()
    if not specs:
        raise SiaError("--models needs at least one model.")
    models, test_set = {}, None
    for spec in specs:
        loaded, loaded_set, _ = _load(args, args.n, reference=spec)
        test_set = test_set or loaded_set  # every row is scored on the first model's test images
        models[loaded.card.id] = (loaded.model, (loaded.card.training or {}).get("recipe", "unknown"))
    overrides = {key: value for key, value in (("linf_eps", args.linf_eps), ("l2_eps", args.l2_eps),
                                               ("sia_eps", args.sia_eps)) if value is not None}
    config = TransferConfig.for_dataset(test_set.name, n=args.n, seed=args.seed, **overrides)
    table = transfer_table(models, test_set, config, columns=_names(args.columns),
                           progress=_stderr_progress("transfer"))
    return table.to_dict()


def _robustify_imbalance(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.robustify import ImbalanceConfig, run_imbalance_study

    config = ImbalanceConfig(rho=args.rho, n_max=args.n_max, methods=_names(args.methods) or (), seeds=args.seeds,
                             epochs=args.epochs, architecture=args.architecture)
    train_set = _split(args.data, "train", args.data_dir, None)
    test_set = _test_set_for(args.data, args.data_dir, args.test_n)
    report = run_imbalance_study(train_set, test_set, config, progress=_stderr_progress("imbalance"))
    return {**report.to_dict(), "command": "python -m sia_core " + shlex.join(args.argv)}


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    loaded, test_set, _ = _load(args, args.n)
    entry = _evaluation_entry(loaded.model, test_set, args.attack, args.eps, args.steps, "evaluate")
    return {"model": loaded.card.id, **entry}


def _predict(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.data.images import decode_image
    from sia_core.errors import ImageDecodeError
    from sia_core.models.registry import load_model_and_card

    model = load_model_and_card(args.model, _model_options(args)).model
    try:
        data = Path(args.image).read_bytes()
    except OSError as error:
        raise ImageDecodeError(f"Could not read {args.image}: {error.strerror}") from error
    probabilities = model.predict_proba(decode_image(data, model.input_shape))[0]
    predicted = int(probabilities.argmax())
    return {"model": model.model_id, "image": args.image, "predicted_class": model.class_names[predicted],
            "confidence": round(float(probabilities[predicted]), 4),
            "probabilities": {name: round(float(p), 4) for name, p in zip(model.class_names, probabilities)}}


def _sia(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.diagnosis import DiagnosisConfig, diagnose

    loaded, dataset, _ = _load(args)
    model = loaded.model
    config = DiagnosisConfig(n=args.n, eps_img=args.eps_img, steps=args.steps, seed=args.seed,
                             attributes=tuple(args.attributes) if args.attributes else None,
                             batch_size=args.batch_size)
    report = diagnose(model, dataset, config, progress=_stderr_progress("sia"))
    return report.to_dict()


def _regions(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.regions.neutralization import NeutralizationConfig, neutralization_study

    loaded, dataset, _ = _load(args)
    model = loaded.model
    config = NeutralizationConfig(n=args.n, n_fit=args.n_fit, fraction=args.fraction, eps=args.eps,
                                  attack_steps=args.steps, fill=args.fill, seed=args.seed)
    report = neutralization_study(model, dataset, config, progress=_stderr_progress("regions"))
    return report.to_dict()


def _margins(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.margins import InputMarginEstimator, margin_study

    estimator = InputMarginEstimator(norm=args.norm, bisection_steps=args.bisection_steps, pgd_steps=args.pgd_steps)
    loaded, dataset, dataset_name = _load(args, args.n)
    model = loaded.model
    study = margin_study(model, dataset.images, dataset.labels, norm=args.norm, eps=args.eps, estimator=estimator,
                         dataset=dataset.name, progress=_stderr_progress("margins"))
    summary = study.summary(attacked=args.attacked, seed=args.seed).to_dict()
    if args.pseudo_fit > 0:
        summary.update(_pseudo_margin(model, dataset_name, args, study, estimator))
    return {key: (round(value, 5) if isinstance(value, float) else value) for key, value in summary.items()}


def _pseudo_margin(model, dataset_name: str, args: argparse.Namespace, study, estimator) -> dict[str, Any]:
    from sia_core.margins import pseudo_margin_study

    try:
        train_set = _split(dataset_name, "train", args.data_dir, model.input_shape)
    except SiaError:
        train_set = None  # held-out test images after the first N instead
    test_images = _test_set_for(dataset_name, args.data_dir, args.n + args.pseudo_fit, model.input_shape).images
    pseudo = pseudo_margin_study(model, study, test_images, train_set=train_set, estimator=estimator,
                                 fit_n=args.pseudo_fit, source=args.pseudo_input, eps=args.eps)
    result = pseudo.result
    return {"pseudo_fit_split": pseudo.fit_split, "pseudo_fit_n": pseudo.fit_n, "pseudo_input": result.source,
            "pseudo_kendall_tau_before": result.kendall_tau_before, "pseudo_kendall_tau_after": result.kendall_tau_after,
            "pseudo_auroc_before": result.auroc_before, "pseudo_auroc_after": result.auroc_after}


def _zoo(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.margins import ZOO_MODELS, ZooConfig, zoo_study
    from sia_core.models.registry import load_model_and_card, with_dataset_class_names
    from sia_core.models.wrapper import require_fit
    from sia_core.results_io import save_results

    try:
        sizes = tuple(int(part) for part in args.subset_sizes.split(",") if part.strip())
    except ValueError as error:
        raise SiaError(f"--subset-sizes takes whole numbers separated by commas, got {args.subset_sizes!r}.") from error
    config = ZooConfig(n=args.n, norm=args.norm, eps=args.eps, subset_sizes=sizes, repeats=args.repeats,
                       pseudo_fit_n=args.pseudo_fit, pseudo_source=args.pseudo_input, seed=args.seed)
    specs = list(_names(args.models) or ZOO_MODELS[args.world])
    # one test set for every member, the first member's (or --data): n + pseudo_fit images, as the pseudo-margin
    # falls back on the test images after the first n
    first, test_set, _ = _load(args, args.n + args.pseudo_fit, reference=specs[0])
    models = {first.card.id: (first.model, first.card)}
    for spec in specs[1:]:
        loaded = with_dataset_class_names(load_model_and_card(spec, _model_options(args)), test_set.class_names)
        require_fit(loaded.model, test_set)
        models[loaded.card.id] = (loaded.model, loaded.card)
    try:
        train_set = _split(first.card.dataset, "train", args.data_dir, first.model.input_shape)
    except SiaError:
        train_set = None
    report = zoo_study(models, test_set, train_set, config, progress=_stderr_progress("zoo"))
    command = "python -m sia_core " + shlex.join(args.argv)
    if args.out and current_shard().is_main:
        save_results(Path(args.out), {"kind": "zoo", "command": command, "created": time.strftime("%Y-%m-%d"),
                                      "result": report.to_dict()})
    arrays = ("input_margins", "logit_margins", "correct", "labels")
    return {"dataset": report.dataset, "config": report.to_dict()["config"], "command": command,
            "least_consistent": report.least_consistent.model_id,
            "models": [{key: value for key, value in entry.to_dict().items() if key not in arrays}
                       for entry in report.entries]}


def _split(dataset_spec: str, split: str, data_dir: Optional[str], image_shape: Optional[tuple[int, int, int]],
           n: Optional[int] = None):
    """A split of a dataset spec as `image_shape`; --data-dir applies to a bare name ("name:path" holds its own)."""
    from sia_core.data.catalog import load_dataset

    return load_dataset(dataset_spec, split, root=None if ":" in dataset_spec else data_dir,  # type: ignore[arg-type]
                        n=n, image_shape=image_shape)


def _constructed_origin(constructed, args: argparse.Namespace):
    """(source model or None, dataset spec) of a constructed set: --model (else the source recorded in the set)
    and --data (else the source's card)."""
    from sia_core.models.registry import load_model_and_card

    try:
        loaded = load_model_and_card(args.model or constructed.source_model, _model_options(args))
    except SiaError:
        if args.data:
            return None, args.data
        raise SiaError(f"The source model {constructed.source_model!r} is not at hand: pass --model SPEC, or "
                       "--data SPEC for the original dataset.") from None
    if not (args.data or loaded.card.dataset):
        raise SiaError(f"{loaded.card.id} has no dataset of its own: pass --data SPEC.")
    return loaded, args.data or loaded.card.dataset


def _features(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.features import KINDS, ConstructedSet, build_constructed_set, train_on_constructed, transfer_study

    if args.action == "build":
        if not args.model or not args.out:
            raise SiaError("features build needs --kind, --model and --out.")
        config = KINDS.build(args.kind, n=args.n, eps=args.eps, steps=args.steps, step_size=args.step_size,
                             seed=args.seed)  # bad values fail here, before the training split loads
        loaded, _, dataset_spec = _load(args, n=1)
        train_set = _split(dataset_spec, "train", args.data_dir, loaded.model.input_shape)
        built = build_constructed_set(loaded.model, train_set, config, out=args.out,
                                      progress=_stderr_progress("build"))
        return {"kind": args.kind, "n": len(built), "out": args.out, "source_model": built.source_model,
                **{key: round(value, 5) for key, value in built.metric.items()}}
    if args.action == "evaluate":
        return _features_evaluate(args)
    if not args.constructed:
        raise SiaError(f"features {args.action} needs --constructed FILE.npz (from features build).")
    constructed = ConstructedSet.load(args.constructed)
    source, dataset_name = _constructed_origin(constructed, args)
    image_shape = constructed.as_dataset().image_shape
    test_set = _test_set_for(dataset_name, args.data_dir, None, image_shape)
    if args.action == "transfer":
        if source is None:
            raise SiaError("features transfer attacks the source model: pass --model SPEC.")
        train_set = _split(dataset_name, "train", args.data_dir, image_shape)
        points = transfer_study(source.model, constructed, train_set, test_set, tuple(args.architectures),
                                epochs=args.epochs, attack_eps=args.eval_eps, attack_n=args.eval_n, seed=args.seed,
                                progress=_stderr_progress("transfer"))
        return {"source_model": constructed.source_model, "constructed": args.constructed, "test_set": test_set.name,
                "attack": f"untargeted L2 PGD, eps {args.eval_eps}, 20 steps", "epochs": args.epochs,
                "points": [_rounded(point.to_dict()) for point in points]}
    model, result = train_on_constructed(constructed.as_dataset(), test_set, kind=constructed.config.kind,
                                         architecture=args.architecture, epochs=args.epochs, seed=args.seed,
                                         eval_eps=args.eval_eps, eval_n=args.eval_n,
                                         progress=_stderr_progress("train"))
    if args.out:
        from sia_core.models.registry import ModelCard, save_model

        card = ModelCard(id=Path(args.out).name, dataset=dataset_name, architecture=args.architecture,
                         input_shape=model.input_shape, class_names=model.class_names,
                         mean=tuple(model.mean.flatten().tolist()), std=tuple(model.std.flatten().tolist()),
                         training={"recipe": "standard",
                                   "train_set": f"{constructed.config.kind} from {args.constructed}",
                                   "epochs": args.epochs, "seed": args.seed,
                                   "weights_dtype": args.weights_dtype,
                        "command": "python -m sia_core " + shlex.join(args.argv)},
                         evaluations=({"test_set": test_set.name, "n": len(test_set),
                                       "clean_accuracy": round(result.test_accuracy, 4),
                                       "robust_accuracy": round(result.robust_accuracy, 4), "attack": "pgd-l2",
                                       "eps": args.eval_eps, "steps": 20},))
        save_model(model, card, Path(args.out))
    return {**_rounded(result.to_dict()), "architecture": args.architecture, "test_set": test_set.name}


def _rounded(values: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    """Floats (and tuples of them) rounded for JSON a person reads."""
    def one(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, digits)
        return [one(item) for item in value] if isinstance(value, (list, tuple)) else value
    return {key: one(value) for key, value in values.items()}


def _features_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.attacks import PGD
    from sia_core.evaluation import evaluate

    if not args.model:
        raise SiaError("features evaluate needs --model (an id, a model folder or a spec).")
    loaded, test_set, _ = _load(args)
    model = loaded.model
    clean = evaluate(model, test_set).clean_accuracy
    robust = evaluate(model, test_set, attack=PGD(eps=args.eval_eps, norm="l2", steps=20, seed=args.seed),
                      n=args.eval_n).robust_accuracy
    return {"model": model.model_id, "test_set": test_set.name, "test_accuracy": round(clean, 4),
            "robust_accuracy": round(robust or 0.0, 4), "eps": args.eval_eps, "norm": "l2", "robust_n": args.eval_n}


def _build_subset(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from sia_core.data.fashion_mnist import (DEBIAN_PACKAGE_DIR, EMBEDDED_SUBSET_FILE, balanced_subset_indices,
                                             find_idx_files, read_idx)

    if args.world == "cifar10":
        from sia_core.data.cifar10 import build_cifar10_subset

        if args.data_dir is None:
            raise SiaError("--data-dir: the CIFAR-10 folder to take the test images from, e.g. "
                           "../shared/data/cifar10-subset (exact pixels).")
        return build_cifar10_subset(args.data_dir, per_class=args.per_class or 100, out=args.out)
    args.data_dir = args.data_dir or str(DEBIAN_PACKAGE_DIR)
    args.per_class = args.per_class or 250
    images_path, labels_path = find_idx_files(args.data_dir, "test")
    images, labels = read_idx(images_path), read_idx(labels_path)
    index = balanced_subset_indices(labels, args.per_class, seed=args.seed)
    out = Path(args.out) if args.out else EMBEDDED_SUBSET_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x=images[index], y=labels[index].astype(np.int64), index=index.astype(np.int64))
    return {"out": str(out), "n": int(index.size), "per_class": args.per_class, "source": str(images_path.parent)}


MODEL_HELP = ("a shipped id (fmnist-standard), a model folder, torchvision:NAME, python:FILE.py:FACTORY or "
              "exported:FILE.pt2")
DATA_HELP = ("a dataset spec: a name (fashion-mnist-subset, shapes) or name:PATH (fashion-mnist:DIR, mnist:DIR, "
             "cifar10:DIR, imagefolder:DIR, npz:FILE); default: the model's own dataset")


def add_model_arguments(parser: argparse.ArgumentParser, *, required: bool = True, data: bool = True) -> None:
    """--model SPEC with the options a user model needs, and --data SPEC: the same flags on every lens."""
    parser.add_argument("--model", required=required, help=MODEL_HELP)
    parser.add_argument("--weights", help="weights file for the model (.safetensors, or .pt/.pth read with "
                                           "weights_only=True)")
    parser.add_argument("--input-shape", help="C,H,W the model takes (python: and exported: models), e.g. 1,28,28")
    parser.add_argument("--mean", help="per-channel normalization mean, e.g. 0.1307 or 0.485,0.456,0.406")
    parser.add_argument("--std", help="per-channel normalization std")
    parser.add_argument("--classes", help="class names separated by commas (default: the dataset's)")
    parser.add_argument("--download", action="store_true",
                        help="torchvision: download the pretrained weights if not cached (needs internet)")
    parser.add_argument("--random-init", action="store_true",
                        help="use an untrained network (for timing and trying the app, not for predictions)")
    if data:
        parser.add_argument("--data", "--dataset", dest="data", help=DATA_HELP)


def add_train_arguments(parser: argparse.ArgumentParser, *, default_recipe: str) -> None:
    """The flags of a training run (`train` and `robustify train`)."""
    from sia_core.attacks import ATTACKS
    from sia_core.data.catalog import DATASETS
    from sia_core.data.shapes import SPURIOUS_ATTRIBUTES
    from sia_core.models.architectures import ARCHITECTURES
    from sia_core.models.registry import WEIGHT_DTYPES
    from sia_core.training import AUGMENTATIONS, RECIPES

    architectures = sorted(ARCHITECTURES)
    parser.add_argument("--id", required=True, help="model id, also the folder name under assets/models")
    parser.add_argument("--dataset", required=True,
                        help=f"one of {', '.join(DATASETS.names())}, or name:PATH")
    parser.add_argument("--data-dir", help="dataset folder (default: the Debian package for Fashion-MNIST)")
    parser.add_argument("--architecture", choices=architectures, default="tiny-cnn")
    parser.add_argument("--recipe", choices=RECIPES.names(), default=default_recipe)
    parser.add_argument("--epochs", type=_count, default=10)
    parser.add_argument("--batch-size", type=_count, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty of the Adam optimizer")
    parser.add_argument("--eps", type=float, default=0.0, help="L-inf radius for adversarial recipes (sia: the pixel "
                                                              "budget; random-attributes: the noise amplitude)")
    parser.add_argument("--attack-steps", type=_count, default=7)
    parser.add_argument("--attack-step-fraction", type=float,
                        help="PGD recipes: each step as a share of the radius (default 2.5 / attack steps)")
    parser.add_argument("--eps-warmup-epochs", type=float, default=0.0)
    parser.add_argument("--trades-beta", type=float, default=6.0, help="trades only: weight of the KL term (the "
                                                                       "paper's 6 for CIFAR-10; larger is more robust)")
    parser.add_argument("--augment", choices=AUGMENTATIONS, default="none",
                        help="crop-flip: random 4-pixel-padded crops and horizontal flips (photos)")
    parser.add_argument("--weights-dtype", choices=WEIGHT_DTYPES, default="float32",
                        help="store the weights in this precision (float16 halves the file; the card is measured "
                             "on the rounded weights)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spurious", choices=SPURIOUS_ATTRIBUTES,
                        help="Shapes only: correlate this attribute with the class in the training split")
    parser.add_argument("--spurious-strength", type=float, default=0.95)
    parser.add_argument("--train-n", type=_count, help="use only the first N training images")
    parser.add_argument("--eval-attack", choices=ATTACKS.names(), help="also report robust accuracy under this attack")
    parser.add_argument("--eval-eps", type=float, default=0.1)
    parser.add_argument("--eval-steps", type=_count, default=20)
    parser.add_argument("--eval-n", type=_count, help="evaluate on the first N test images only")
    parser.add_argument("--eval-data", action="append", metavar="SPEC",
                        help="evaluate on this dataset spec's test split (repeat for several; the first is the card's "
                             "headline), e.g. cifar10:../shared/data/cifar10-subset; default: the training data's")
    parser.add_argument("--eval-attack-sets", type=_count_or_zero,
                        help="attack only the first K evaluation sets (the others: clean accuracy); default all")
    parser.add_argument("--description", default="")
    parser.add_argument("--out", help="output folder (default assets/models/<id>)")
    parser.add_argument("--checkpoint", help="write a checkpoint here after every epoch, and resume from it when it "
                                             "exists (a run that was stopped continues after its last epoch)")


def build_parser() -> argparse.ArgumentParser:
    # every choice list reads the registry of its family, so a new entry shows up here by itself
    from sia_core.attacks import ATTACKS, NORMS
    from sia_core.data.fashion_mnist import DEBIAN_PACKAGE_DIR
    from sia_core.features import KINDS
    from sia_core.margins import PSEUDO_INPUTS, ZOO_MODELS, ZooConfig
    from sia_core.models.architectures import ARCHITECTURES
    from sia_core.regions.neutralization import FILLS
    from sia_core.robustify import IMBALANCE_METHODS, TRANSFER_COLUMNS

    architectures = sorted(ARCHITECTURES)
    parser = argparse.ArgumentParser(prog="python -m sia_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list the registered models and their cards")
    models.set_defaults(handler=_models)

    trainer = commands.add_parser("train", help="train a model and write its weights and card")
    add_train_arguments(trainer, default_recipe="standard")
    trainer.set_defaults(handler=_train)

    robustify = commands.add_parser("robustify", help="SIA's applications: SIA adversarial training, the transfer "
                                                      "table, and SIA augmentation for imbalanced classes")
    robustify_commands = robustify.add_subparsers(dest="robustify_command", required=True)
    robust_trainer = robustify_commands.add_parser("train", help="train with SIA (or another recipe): as `train`")
    add_train_arguments(robust_trainer, default_recipe="sia")
    robust_trainer.set_defaults(handler=_train)
    transfer = robustify_commands.add_parser("transfer", help="robust accuracy of several models under FGSM, PGD-L∞, "
                                                              "PGD-L2, CW-L2, attributes only and SIA")
    transfer.add_argument("--models", required=True, help="model specs separated by commas (shipped ids, folders)")
    transfer.add_argument("--data", "--dataset", dest="data", help=DATA_HELP)
    transfer.add_argument("--data-dir", help="folder for the dataset, when --data names one without a path")
    transfer.add_argument("--n", type=_count, default=1000, help="test images per cell (the first N)")
    transfer.add_argument("--columns", help=f"attacks separated by commas (default all: "
                                            f"{', '.join(TRANSFER_COLUMNS.names())})")
    transfer.add_argument("--linf-eps", type=float, help="FGSM and PGD-L∞ radius (default: the dataset's)")
    transfer.add_argument("--l2-eps", type=float, help="PGD-L2 and CW-L2 radius (default: the dataset's)")
    transfer.add_argument("--sia-eps", type=float, help="SIA's pixel budget (default 4/255)")
    transfer.add_argument("--seed", type=int, default=0)
    # rows are shipped ids or model folders (their cards say the rest): no per-model options
    transfer.set_defaults(handler=_robustify_transfer, weights=None, input_shape=None, mean=None, std=None,
                          classes=None, download=False, random_init=False)
    imbalance = robustify_commands.add_parser("imbalance", help="long-tailed training: plain, re-weighting, "
                                                                "over-sampling, random-attribute and SIA augmentation")
    imbalance.add_argument("--data", "--dataset", dest="data", default="fashion-mnist", help=DATA_HELP)
    imbalance.add_argument("--data-dir", help="dataset folder (default: the Debian package for Fashion-MNIST)")
    imbalance.add_argument("--rho", type=float, default=100.0, help="imbalance ratio: largest over smallest class")
    imbalance.add_argument("--n-max", type=_count, help="images of the largest class (default: all it has)")
    imbalance.add_argument("--methods", default=",".join(IMBALANCE_METHODS.names()),
                           help=f"separated by commas, from {', '.join(IMBALANCE_METHODS.names())}")
    imbalance.add_argument("--seeds", type=_count, default=3)
    imbalance.add_argument("--epochs", type=_count, default=20, help="the budget: passes over the long-tailed set")
    imbalance.add_argument("--architecture", choices=architectures, default="tiny-cnn")
    imbalance.add_argument("--test-n", type=_count, help="score on the first N test images only")
    imbalance.set_defaults(handler=_robustify_imbalance)

    compactor = commands.add_parser("compact", help="store a shipped model's weights in float16 and re-measure its "
                                                    "card on the rounded weights")
    compactor.add_argument("--model", required=True, help="a shipped model id")
    compactor.add_argument("--dtype", choices=("float16",), default="float16")
    compactor.set_defaults(handler=_compact)

    evaluator = commands.add_parser("evaluate", help="clean and robust accuracy of a model")
    add_model_arguments(evaluator)
    evaluator.add_argument("--data-dir", help="folder of the model's own dataset (when --data is a bare name)")
    evaluator.add_argument("--attack", choices=ATTACKS.names())
    evaluator.add_argument("--eps", type=float, default=0.1)
    evaluator.add_argument("--steps", type=_count, default=20)
    evaluator.add_argument("--n", type=_count, help="evaluate on the first N test images only")
    evaluator.set_defaults(handler=_evaluate)

    predictor = commands.add_parser("predict", help="classify one PNG/JPEG/WebP image")
    add_model_arguments(predictor, data=False)
    predictor.add_argument("--image", required=True)
    predictor.set_defaults(handler=_predict)

    sia = commands.add_parser("sia", help="diagnose a model with the Semantic Image Attack")
    add_model_arguments(sia)
    sia.add_argument("--data-dir", help="dataset folder (default: the model's own test set)")
    sia.add_argument("--n", type=_count, default=256, help="correctly classified test images to attack")
    sia.add_argument("--eps-img", type=float, default=2 / 255, help="L-inf pixel budget shared by all attacks")
    sia.add_argument("--steps", type=_count, default=30)
    sia.add_argument("--seed", type=int, default=0)
    sia.add_argument("--batch-size", type=_count, default=256,
                     help="images per attack call (under torchrun, the unit the processes share)")
    sia.add_argument("--attributes", nargs="*", help="attribute names (default: all that apply)")
    sia.set_defaults(handler=_sia)

    regions = commands.add_parser("regions", help="RoI vs RoA overlap and neutralization as a defense")
    add_model_arguments(regions)
    regions.add_argument("--data-dir", help="dataset folder (default: the model's own test set)")
    regions.add_argument("--n", type=_count, default=256, help="evaluation images")
    regions.add_argument("--n-fit", type=_count, default=256,
                         help="held-out images that learn the dataset/class masks")
    regions.add_argument("--fraction", type=float, default=0.2, help="top-q share of pixels in each region")
    regions.add_argument("--eps", type=float, default=8 / 255, help="L-inf radius of the PGD attack")
    regions.add_argument("--steps", type=_count, default=10)
    regions.add_argument("--fill", choices=FILLS.names(), default="zero")
    regions.add_argument("--seed", type=int, default=0)
    regions.set_defaults(handler=_regions)

    margins = commands.add_parser("margins", help="logit margin against input-space margin, and detection")
    add_model_arguments(margins)
    margins.add_argument("--data-dir", help="dataset folder (default: the model's own test set)")
    margins.add_argument("--n", type=_count, default=1000, help="first N test images")
    margins.add_argument("--norm", choices=NORMS, default="linf")
    margins.add_argument("--eps", type=float, default=8 / 255, help="non-robust means input margin <= eps")
    margins.add_argument("--bisection-steps", type=_count_or_zero,
                         help="halvings of the radius below DeepFool's (default: 8 up to 32 px, 0 above)")
    margins.add_argument("--pgd-steps", type=_count, help="PGD steps per radius (default: 20 up to 32 px, 5 above)")
    margins.add_argument("--attacked", type=_count, default=100,
                         help="samples attacked for the sample-efficient robust-accuracy estimate")
    margins.add_argument("--seed", type=int, default=0)
    margins.add_argument("--pseudo-fit", type=_count_or_zero, default=0,
                         help="also learn a pseudo-margin on this many held-out training images (0: skip)")
    margins.add_argument("--pseudo-input", choices=PSEUDO_INPUTS, default="logits")
    margins.set_defaults(handler=_margins)

    zoo = commands.add_parser("zoo", help="margin consistency over a zoo of models: τ, detection, robust accuracy, "
                                          "the sample-efficient estimate over repeated subsets, the pseudo-margin")
    zoo.add_argument("--world", choices=sorted(ZOO_MODELS), default="fashion-mnist",
                     help="the shipped zoo to study (default fashion-mnist)")
    zoo.add_argument("--models", help="model specs separated by commas instead of the world's zoo")
    add_model_arguments(zoo, required=False)
    zoo.add_argument("--data-dir", help="dataset folder (default: the models' own test set)")
    zoo.add_argument("--n", type=_count, default=ZooConfig.n, help="first N test images per model")
    zoo.add_argument("--norm", choices=NORMS, default=ZooConfig.norm)
    zoo.add_argument("--eps", type=float, default=ZooConfig.eps, help="non-robust means input margin <= eps")
    zoo.add_argument("--subset-sizes", default=",".join(map(str, ZooConfig.subset_sizes)),
                     help="sizes of the attacked subsets of the sample-efficient estimate")
    zoo.add_argument("--repeats", type=_count, default=ZooConfig.repeats, help="random subsets per size")
    zoo.add_argument("--pseudo-fit", type=_count, default=ZooConfig.pseudo_fit_n,
                     help="held-out training images the pseudo-margin learns from")
    zoo.add_argument("--pseudo-input", choices=PSEUDO_INPUTS, default=ZooConfig.pseudo_source)
    zoo.add_argument("--seed", type=int, default=0)
    zoo.add_argument("--out", help="also write the whole report (with every model's margins) to this .json.gz")
    zoo.set_defaults(handler=_zoo)

    features = commands.add_parser("features", help="robust / non-robust feature datasets: build, train, evaluate, "
                                                     "transfer")
    features.add_argument("action", choices=("build", "train", "evaluate", "transfer"))
    features.add_argument("--kind", choices=KINDS.names(), default="d_det")
    add_model_arguments(features, required=False)
    features.add_argument("--constructed", help="train/transfer: a constructed .npz from `features build`")
    features.add_argument("--data-dir", help="the original dataset's folder or file (CIFAR-10: required)")
    features.add_argument("--n", type=_count, default=2000)
    features.add_argument("--eps", type=float, default=2.0, help="build d_rand/d_det: L2 radius of the targeted PGD")
    features.add_argument("--steps", type=_count, default=100)
    features.add_argument("--step-size", type=float, default=0.1)
    features.add_argument("--architecture", choices=architectures, default="tiny-cnn",
                          help="train: the fresh model's architecture")
    features.add_argument("--architectures", nargs="+", choices=architectures,
                          default=["mlp", "tiny-cnn", "small-cnn"], help="transfer: the architectures to compare")
    features.add_argument("--epochs", type=_count, default=10)
    features.add_argument("--eval-eps", type=float, default=0.5,
                          help="L2 radius for robust accuracy (transfer: of the source model's attack)")
    features.add_argument("--eval-n", type=_count, default=1000, help="test images attacked")
    features.add_argument("--seed", type=int, default=0)
    features.add_argument("--out", help="build: the .npz to write (resumable); train: a model folder to save")
    features.set_defaults(handler=_features)

    subset = commands.add_parser("build-subset", help="write an embedded test subset: Fashion-MNIST (balanced, "
                                                      "random) or CIFAR-10 (the first images of each class)")
    subset.add_argument("--world", choices=("fashion-mnist", "cifar10"), default="fashion-mnist")
    subset.add_argument("--data-dir", help=f"the source folder (Fashion-MNIST default: {DEBIAN_PACKAGE_DIR})")
    subset.add_argument("--per-class", type=_count, help="images per class (default 250; CIFAR-10: 100)")
    subset.add_argument("--seed", type=int, default=0)
    subset.add_argument("--out")
    subset.set_defaults(handler=_build_subset)

    for sub in (models, trainer, robust_trainer, transfer, imbalance, compactor, evaluator, predictor, sia, regions, margins, zoo,
                features, subset):
        sub.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def _print_human(result: dict[str, Any]) -> None:
    for key, value in result.items():
        print(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.argv = argv
    shard = init_from_environment()  # under torchrun: join the group; the study shards its images
    try:
        result = args.handler(args)
    except SiaError as error:  # the user's input; anything else is a bug and keeps its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        shutdown()
    if not shard.is_main:
        return 0  # rank 0 prints the one result
    if args.json:
        print(json.dumps(result))
    else:
        _print_human(result)
    return 0
