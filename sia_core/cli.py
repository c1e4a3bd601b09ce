"""The command line: `python -m sia_core models|train|evaluate|predict|sia|regions|margins|features|build-subset ...`.

Every command that takes `--json` prints exactly one JSON object on stdout; progress goes to
stderr; a user error prints one clear line and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from sia_core.distributed import current_shard, init_from_environment, shutdown
from sia_core.errors import SiaError
from sia_core.runtime import keep_freed_memory_for_reuse

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


def _model_options(args: argparse.Namespace):
    from sia_core.models.user_models import ModelOptions

    return ModelOptions.parse(weights=args.weights, input_shape=args.input_shape, mean=args.mean, std=args.std,
                              classes=args.classes, download=args.download, random_init=args.random_init)


def _subject(args: argparse.Namespace, n: Optional[int] = None, train_split: str = "none", model: Optional[str] = None):
    """The resolver's `Subject` for the command's --model, --data and --data-dir."""
    from sia_core.resolve import resolve

    return resolve(model or args.model, getattr(args, "data", None), options=_model_options(args),
                   data_dir=args.data_dir, n=n, train_split=train_split)  # type: ignore[arg-type]


def _command(args: argparse.Namespace) -> str:
    return "python -m sia_core " + shlex.join(args.argv)


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.evaluation import EvaluationConfig
    from sia_core.models.cards import TrainingRequest, train_model
    from sia_core.models.registry import save_model
    from sia_core.paths import MODELS_DIR
    from sia_core.training import TrainConfig

    config = TrainConfig(recipe=args.recipe, epochs=args.epochs, batch_size=args.batch_size,
                         learning_rate=args.lr, weight_decay=args.weight_decay, eps=args.eps, attack_steps=args.attack_steps,
                         eps_warmup_epochs=args.eps_warmup_epochs, seed=args.seed, trades_beta=args.trades_beta,
                         augment=args.augment, attack_step_fraction=args.attack_step_fraction)
    request = TrainingRequest(
        model_id=args.id, dataset=args.dataset, architecture=args.architecture, config=config, data_dir=args.data_dir,
        spurious=args.spurious, spurious_strength=args.spurious_strength, train_n=args.train_n,
        eval_data=tuple(args.eval_data or ()), attacked_sets=args.eval_attack_sets,
        evaluation=EvaluationConfig(attack=args.eval_attack, eps=args.eval_eps, steps=args.eval_steps, n=args.eval_n),
        weights_dtype=args.weights_dtype, description=args.description, command=_command(args),
        init_from=args.init_from)
    trained = train_model(request, checkpoint=Path(args.checkpoint) if args.checkpoint else None,
                          progress=_stderr_progress(f"train {args.id}"))
    out = Path(args.out) if args.out else MODELS_DIR / args.id
    save_model(trained.model, trained.card, out, dtype=args.weights_dtype)
    return {"model": args.id, "out": str(out), "seconds": trained.card.training["seconds"],
            "evaluations": list(trained.card.evaluations)}


def _compact(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.models.cards import compact_model

    card, before = compact_model(args.model, args.dtype, _command(args))
    return {"model": card.id, "dtype": args.dtype, "evaluations": list(card.evaluations), "before": list(before)}


def _names(text: Optional[str]) -> Optional[tuple[str, ...]]:
    return tuple(part.strip() for part in text.split(",") if part.strip()) if text else None


def _robustify_transfer(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.resolve import resolve_group
    from sia_core.robustify import TransferConfig, transfer_table

    specs = _names(args.models) or ()
    if not specs:
        raise SiaError("--models needs at least one model.")
    # every row is scored on the first model's test images
    first, group = resolve_group(specs, args.data, options=_model_options(args), data_dir=args.data_dir, n=args.n)
    models = {loaded.card.id: (loaded.model, (loaded.card.training or {}).get("recipe", "unknown")) for loaded in group}
    overrides = {key: value for key, value in (("eps_linf", args.eps_linf), ("eps_l2", args.eps_l2),
                                               ("sia_eps_linf", args.sia_eps_linf)) if value is not None}
    config = TransferConfig.for_dataset(first.test_set.name, n=args.n, seed=args.seed, **overrides)
    table = transfer_table(models, first.test_set, config, columns=_names(args.columns),
                           progress=_stderr_progress("transfer"))
    return table.to_dict()


def _robustify_imbalance(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.resolve import test_split, training_split
    from sia_core.robustify import ImbalanceConfig, run_imbalance_study

    config = ImbalanceConfig(rho=args.rho, n_max=args.n_max, methods=_names(args.methods) or (), seeds=args.seeds,
                             epochs=args.epochs, architecture=args.architecture)
    train_set = training_split(args.data, args.data_dir, required=True)
    test_set = test_split(args.data, args.data_dir, n=args.test_n)
    report = run_imbalance_study(train_set, test_set, config, progress=_stderr_progress("imbalance"))
    return {**report.to_dict(), "command": _command(args)}


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.evaluation import EvaluationConfig, evaluation_study

    # "autoattack" alone: the ensemble in the norm the model was trained and carded in (L∞ unless its card says L2)
    attack = _autoattack_for(args.model) if args.attack == "autoattack" else args.attack
    config = EvaluationConfig(attack=attack, eps=args.eps, steps=args.steps, n=args.n)
    subject = _subject(args, n=config.n)
    if args.add_to_card:
        from sia_core.models.cards import add_card_evaluation

        card = add_card_evaluation(args.model, subject.test_set, config, _command(args))
        return {"model": card.id, **card.evaluations[-1]}
    study = evaluation_study(subject.model, subject.test_set, config, progress=_stderr_progress("evaluate"))
    return {"model": subject.card.id, **study.card_entry()}


def _autoattack_for(model_spec: str) -> str:
    from sia_core.errors import SiaError
    from sia_core.models.registry import model_folder, read_card

    try:
        evaluations = read_card(model_folder(model_spec)).evaluations
    except SiaError:  # not a folder with a card (a torchvision or python: model): L∞
        evaluations = ()
    attacks = [entry.get("attack") or "" for entry in evaluations]
    return "autoattack-l2" if any(attack.endswith("-l2") for attack in attacks) else "autoattack-linf"


def _predict(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.data.images import decode_image
    from sia_core.errors import ImageDecodeError
    from sia_core.models.registry import load_model_and_card

    loaded = load_model_and_card(args.model, _model_options(args))
    model = loaded.model
    try:
        data = Path(args.image).read_bytes()
    except OSError as error:
        raise ImageDecodeError(f"Could not read {args.image}: {error.strerror}") from error
    if loaded.card.is_keypoints:
        from sia_core.keypoints.predict import predict_keypoints

        return {"image": args.image, **predict_keypoints(model, loaded.card, data)}
    probabilities = model.predict_proba(decode_image(data, model.input_shape))[0]
    predicted = int(probabilities.argmax())
    top = probabilities.topk(min(5, len(probabilities)))
    return {"model": model.model_id, "image": args.image, "predicted_class": model.class_names[predicted],
            "confidence": round(float(probabilities[predicted]), 4),
            "top5": [{"class": model.class_names[int(i)], "probability": round(float(p), 4)}
                     for p, i in zip(top.values, top.indices)],
            "probabilities": {name: round(float(p), 4) for name, p in zip(model.class_names, probabilities)}}


def _sia(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.diagnosis import DiagnosisConfig, diagnose

    config = DiagnosisConfig(n=args.n, eps_linf=args.eps_linf, steps=args.steps, seed=args.seed,
                             attributes=tuple(args.attributes) if args.attributes else None,
                             batch_size=args.batch_size)
    subject = _subject(args)
    model = subject.model
    if args.nme_threshold is not None:
        if not subject.card.is_keypoints:
            raise SiaError("--nme-threshold applies to keypoint models; this one classifies.")
        model = model.with_threshold(args.nme_threshold)
    return diagnose(model, subject.test_set, config, progress=_stderr_progress("sia")).to_dict()


def _regions(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.regions.neutralization import NeutralizationConfig, neutralization_study

    config = NeutralizationConfig(n=args.n, n_fit=args.n_fit, fraction=args.fraction, eps_linf=args.eps_linf,
                                  attack_steps=args.steps, fill=args.fill, seed=args.seed)
    subject = _subject(args)
    return neutralization_study(subject.model, subject.test_set, config, progress=_stderr_progress("regions")).to_dict()


def _margins(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.margins import MarginsConfig, margins_study

    config = MarginsConfig(n=args.n, norm=args.norm, eps=args.eps, bisection_steps=args.bisection_steps,
                           pgd_steps=args.pgd_steps, attacked=args.attacked, seed=args.seed,
                           pseudo_fit_n=args.pseudo_fit, pseudo_source=args.pseudo_input)
    # the pseudo-margin falls back on the test images after the first n without a training split
    subject = _subject(args, n=config.n + config.pseudo_fit_n,
                       train_split="optional" if config.pseudo_fit_n else "none")
    report = margins_study(subject.model, subject.test_set, subject.train_set, config,
                           progress=_stderr_progress("margins"))
    summary = report.summary.to_dict()
    if report.pseudo is not None:
        pseudo = report.pseudo.result
        summary.update({"pseudo_fit_split": report.pseudo.fit_split, "pseudo_fit_n": report.pseudo.fit_n,
                        "pseudo_input": pseudo.source, "pseudo_kendall_tau_before": pseudo.kendall_tau_before,
                        "pseudo_kendall_tau_after": pseudo.kendall_tau_after, "pseudo_auroc_before": pseudo.auroc_before,
                        "pseudo_auroc_after": pseudo.auroc_after})
    return _rounded(summary, 5)


def _zoo(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.margins import ZOO_MODELS, ZooConfig, zoo_study
    from sia_core.resolve import resolve_group
    from sia_core.results_io import SavedResult, save_result

    try:
        sizes = tuple(int(part) for part in args.subset_sizes.split(",") if part.strip())
    except ValueError as error:
        raise SiaError(f"--subset-sizes takes whole numbers separated by commas, got {args.subset_sizes!r}.") from error
    config = ZooConfig(n=args.n, norm=args.norm, eps=args.eps, subset_sizes=sizes, repeats=args.repeats,
                       pseudo_fit_n=args.pseudo_fit, pseudo_source=args.pseudo_input, seed=args.seed)
    specs = list(_names(args.models) or ZOO_MODELS[args.world])
    # one test set for every member, the first member's (or --data): n + pseudo_fit images, as the pseudo-margin
    # falls back on the test images after the first n
    first, group = resolve_group(specs, args.data, options=_model_options(args), data_dir=args.data_dir,
                                 n=config.n + config.pseudo_fit_n, train_split="optional")
    models = {loaded.card.id: (loaded.model, loaded.card) for loaded in group}
    report = zoo_study(models, first.test_set, first.train_set, config, progress=_stderr_progress("zoo"))
    command = _command(args)
    if args.out and current_shard().is_main:
        save_result(Path(args.out), SavedResult(
            kind="zoo", model=args.world if not args.models else "custom", dataset_key=f"{first.dataset_spec}|None|None",
            config=config, result=report, command=command, created=time.strftime("%Y-%m-%d")))
    return {"dataset": report.dataset, "config": dataclasses.asdict(report.config), "command": command,
            "least_consistent": report.least_consistent.model_id,
            "models": [entry.summary() for entry in report.entries]}


def _features(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.features import (KINDS, ConstructedSet, FeatureTrainingConfig, FeatureTransferConfig,
                                   build_constructed_set, train_on_constructed, transfer_study)
    from sia_core.resolve import resolve, test_split

    if args.action == "build":
        if not args.model or not args.out:
            raise SiaError("features build needs --kind, --model and --out.")
        config = KINDS.build(args.kind, n=args.n, eps_l2=args.eps_l2, steps=args.steps, step_size=args.step_size,
                             seed=args.seed)  # bad values fail here, before the training split loads
        subject = _subject(args, n=1, train_split="required")
        built = build_constructed_set(subject.model, subject.train_set, config, out=args.out,
                                      progress=_stderr_progress("build"))
        return {"kind": args.kind, "n": len(built), "out": args.out, "source_model": built.source_model,
                **_rounded(built.metric, 5)}
    if args.action == "evaluate":
        return _features_evaluate(args)
    if not args.constructed:
        raise SiaError(f"features {args.action} needs --constructed FILE.npz (from features build).")
    constructed = ConstructedSet.load(args.constructed)
    image_shape = constructed.as_dataset().image_shape
    source_spec = args.model or constructed.source_model
    if args.action == "transfer":
        config = FeatureTransferConfig(architectures=tuple(args.architectures), epochs=args.epochs,
                                       attack_eps_l2=args.eval_eps_l2, attack_n=args.eval_n, seed=args.seed)
        subject = _subject(args, train_split="required", model=source_spec)
        report = transfer_study(subject.model, constructed, subject.train_set, subject.test_set, config,
                                progress=_stderr_progress("transfer"))
        return {"source_model": constructed.source_model, "constructed": args.constructed,
                "test_set": report.test_set, "attack": report.attack, "epochs": args.epochs,
                "points": [_rounded(dataclasses.asdict(point)) for point in report.points]}
    # train: scored on the original test set, named by --data or the source model's card
    try:
        dataset_spec = args.data or resolve(source_spec, options=_model_options(args), n=1).dataset_spec
    except SiaError as error:
        raise SiaError(f"The source model {source_spec!r} is not at hand ({error}): pass --model SPEC, or --data "
                       "SPEC for the original dataset.") from None
    test_set = test_split(dataset_spec, args.data_dir, image_shape=image_shape)
    config = FeatureTrainingConfig(architecture=args.architecture, epochs=args.epochs, seed=args.seed,
                                   eval_eps_l2=args.eval_eps_l2, eval_n=args.eval_n)
    model, result = train_on_constructed(constructed.as_dataset(), test_set, config, kind=constructed.config.kind,
                                         progress=_stderr_progress("train"))
    if args.out:
        _save_constructed_set_model(model, result, test_set, dataset_spec, args)
    return {**_rounded(dataclasses.asdict(result)), "architecture": args.architecture, "test_set": test_set.name}


def _save_constructed_set_model(model, result, test_set, dataset_spec: str, args: argparse.Namespace) -> None:
    from sia_core.models.cards import constructed_set_model_card
    from sia_core.models.registry import save_model

    card = constructed_set_model_card(
        model, Path(args.out).name, dataset_spec, f"{result.kind} from {args.constructed}", args.architecture,
        args.epochs, args.seed, args.weights_dtype, _command(args),
        {"test_set": test_set.name, "n": len(test_set), "clean_accuracy": round(result.test_accuracy, 4),
         "robust_accuracy": round(result.robust_accuracy, 4), "attack": "pgd-l2", "eps": result.eps, "steps": 20})
    save_model(model, card, Path(args.out))


def _rounded(values: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    """Floats (and tuples of them) rounded for JSON a person reads."""
    def one(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, digits)
        return [one(item) for item in value] if isinstance(value, (list, tuple)) else value
    return {key: one(value) for key, value in values.items()}


def _features_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from sia_core.evaluation import EvaluationConfig, evaluation_study

    if not args.model:
        raise SiaError("features evaluate needs --model (an id, a model folder or a spec).")
    subject = _subject(args)
    clean = evaluation_study(subject.model, subject.test_set).clean_accuracy
    robust = evaluation_study(subject.model, subject.test_set, EvaluationConfig(
        attack="pgd-l2", eps=args.eval_eps_l2, steps=20, n=args.eval_n, seed=args.seed)).robust_accuracy
    return {"model": subject.model.model_id, "test_set": subject.test_set.name, "test_accuracy": round(clean, 4),
            "robust_accuracy": round(robust or 0.0, 4), "eps": args.eval_eps_l2, "norm": "l2", "robust_n": args.eval_n}


def _build_subset(args: argparse.Namespace) -> dict[str, Any]:
    if args.world == "cifar10":
        from sia_core.data.cifar10 import build_cifar10_subset

        if args.data_dir is None:
            raise SiaError("--data-dir: the CIFAR-10 folder to take the test images from (exact pixels: the "
                           "cifar-10-batches-py folder or the exact-pixel .npz copy).")
        return build_cifar10_subset(args.data_dir, per_class=args.per_class or 100, out=args.out)
    from sia_core.data.fashion_mnist import DEBIAN_PACKAGE_DIR, build_fashion_mnist_subset

    return build_fashion_mnist_subset(args.data_dir or DEBIAN_PACKAGE_DIR, per_class=args.per_class or 250,
                                      seed=args.seed, out=args.out)


MODEL_HELP = ("a shipped id (fmnist-standard), a model folder, torchvision:NAME, python:FILE.py:FACTORY or "
              "exported:FILE.pt2")
DATA_HELP = ("a dataset spec: a name (fashion-mnist-subset, cifar10-subset, shapes) or name:PATH (fashion-mnist:DIR, "
             "mnist:DIR, cifar10:DIR, imagefolder:DIR, npz:FILE); default: the model's own dataset")


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
    parser.add_argument("--eps", type=float, default=0.0, help="the recipe's radius in its own norm (pgd-l2: L2; pgd, "
                        "fgsm-rs, trades: L∞; sia: the L∞ pixel budget; random-attributes: the L∞ noise amplitude)")
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
    parser.add_argument("--init-from", metavar="MODEL",
                        help="start from this shipped model's weights (same architecture and classes) instead of the "
                             "seed's: continue its training with another recipe")
    parser.add_argument("--eval-attack", choices=ATTACKS.names(), help="also report robust accuracy under this attack")
    parser.add_argument("--eval-eps", type=float, default=0.1)
    parser.add_argument("--eval-steps", type=_count, default=20)
    parser.add_argument("--eval-n", type=_count, help="evaluate on the first N test images only")
    parser.add_argument("--eval-data", action="append", metavar="SPEC",
                        help="evaluate on this dataset spec's test split (repeat for several; the first is the card's "
                             "headline), e.g. cifar10:PATH; default: the training data's")
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
    transfer.add_argument("--eps-linf", "--linf-eps", dest="eps_linf", type=float,
                          help="FGSM and PGD-L∞ radius (default: the dataset's)")
    transfer.add_argument("--eps-l2", "--l2-eps", dest="eps_l2", type=float,
                          help="PGD-L2 and CW-L2 radius (default: the dataset's)")
    transfer.add_argument("--sia-eps-linf", "--sia-eps", dest="sia_eps_linf", type=float,
                          help="SIA's L∞ pixel budget (default 4/255)")
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
    evaluator.add_argument("--attack", choices=(*ATTACKS.names(), "autoattack"),
                           help="autoattack: the ensemble in the norm of the model's card (L∞ unless it says L2), "
                                "with PGD-20 on the same images beside it")
    evaluator.add_argument("--eps", type=float, default=0.1)
    evaluator.add_argument("--steps", type=_count, default=20)
    evaluator.add_argument("--n", type=_count, help="evaluate on the first N test images only")
    evaluator.add_argument("--add-to-card", action="store_true",
                           help="a shipped model: append this measurement (and its command) to its card")
    evaluator.set_defaults(handler=_evaluate)

    predictor = commands.add_parser("predict", help="classify one PNG/JPEG/WebP image")
    add_model_arguments(predictor, data=False)
    predictor.add_argument("--image", required=True)
    predictor.set_defaults(handler=_predict)

    sia = commands.add_parser("sia", help="diagnose a model with the Semantic Image Attack")
    add_model_arguments(sia)
    sia.add_argument("--data-dir", help="dataset folder (default: the model's own test set)")
    sia.add_argument("--n", type=_count, default=256, help="correctly classified test images to attack")
    sia.add_argument("--eps-linf", "--eps-img", dest="eps_linf", type=float, default=2 / 255,
                     help="L∞ pixel budget shared by all attacks (--eps-img: the old name)")
    sia.add_argument("--steps", type=_count, default=30)
    sia.add_argument("--seed", type=int, default=0)
    sia.add_argument("--batch-size", type=_count, default=256,
                     help="images per attack call (under torchrun, the unit the processes share)")
    sia.add_argument("--attributes", nargs="*", help="attribute names (default: all that apply)")
    sia.add_argument("--nme-threshold", type=float,
                     help="keypoint models: the NME above which a prediction counts as failed (default: the card's, 0.1)")
    sia.set_defaults(handler=_sia)

    regions = commands.add_parser("regions", help="RoI vs RoA overlap and neutralization as a defense")
    add_model_arguments(regions)
    regions.add_argument("--data-dir", help="dataset folder (default: the model's own test set)")
    regions.add_argument("--n", type=_count, default=256, help="evaluation images")
    regions.add_argument("--n-fit", type=_count, default=256,
                         help="held-out images that learn the dataset/class masks")
    regions.add_argument("--fraction", type=float, default=0.2, help="top-q share of pixels in each region")
    regions.add_argument("--eps-linf", "--eps", dest="eps_linf", type=float, default=8 / 255,
                         help="L∞ radius of the PGD attack (--eps: the old name)")
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
                         help="halvings of the radius below DeepFool's with PGD, before the boundary walk (default: 0)")
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
    features.add_argument("--eps-l2", "--eps", dest="eps_l2", type=float, default=2.0,
                          help="build d_rand/d_det: L2 radius of the targeted PGD (--eps: the old name)")
    features.add_argument("--steps", type=_count, default=100)
    features.add_argument("--step-size", type=float, default=0.1)
    features.add_argument("--architecture", choices=architectures, default="tiny-cnn",
                          help="train: the fresh model's architecture")
    features.add_argument("--architectures", nargs="+", choices=architectures,
                          default=["mlp", "tiny-cnn", "small-cnn"], help="transfer: the architectures to compare")
    features.add_argument("--epochs", type=_count, default=10)
    features.add_argument("--eval-eps-l2", "--eval-eps", dest="eval_eps_l2", type=float, default=0.5,
                          help="L2 radius for robust accuracy (transfer: of the source model's attack; --eval-eps: "
                               "the old name)")
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


def run() -> None:
    """The `sia` console command (installed by the project's setup): the same as `python -m sia_core`."""
    sys.exit(main())


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    keep_freed_memory_for_reuse()
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
