"""Every config of the engine refuses bad values when it is made, with a `ConfigError` that names the field.

`BAD_VALUES` holds at least one bad construction per config; `test_every_config_has_a_bad_value_case` finds the
configs by itself (frozen dataclasses named `...Config`, and the configured callables: attacks, RoI/RoA methods,
estimators), so a new config without a case here fails the suite until it gets one.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import Any

import pytest

import sia_core
from sia_core.errors import ConfigError

_CARD = dict(id="unit", dataset="fashion-mnist", architecture="tiny-cnn", input_shape=(1, 28, 28),
             class_names=tuple("0123456789"), mean=(0.5,), std=(0.25,))

# (module, class, keyword arguments): each construction must raise a ConfigError.
BAD_VALUES: list[tuple[str, str, dict[str, Any]]] = [
    # attacks and training (helper A)
    ("sia_core.attacks", "FGSM", {"eps": -1}),
    ("sia_core.attacks", "FGSM", {"eps": 0.1, "step_size": -0.5}),
    ("sia_core.attacks", "PGD", {"eps": -0.1}),
    ("sia_core.attacks", "PGD", {"eps": 0.1, "norm": "l1"}),
    ("sia_core.attacks", "PGD", {"eps": 0.1, "steps": -1}),
    ("sia_core.attacks", "DeepFool", {"steps": -3, "candidates": 0}),
    ("sia_core.attacks", "DeepFool", {"overshoot": -0.1}),
    ("sia_core.attacks", "DeepFool", {"norm": "l1"}),
    ("sia_core.attacks", "SemanticAttack", {"steps": -1}),
    ("sia_core.attacks", "SemanticAttack", {"eps_linf": -0.01}),
    ("sia_core.attacks", "SemanticAttack", {"warmup_fraction": 1.5}),
    ("sia_core.margins.zoo", "ZooConfig", {"n": 0}),
    ("sia_core.margins.zoo", "ZooConfig", {"n": 10, "subset_sizes": (20,)}),
    ("sia_core.attacks.autoattack", "AutoAttack", {"eps": -0.5}),
    ("sia_core.attacks.autoattack", "AutoAttack", {"eps": 0.5, "norm": "l1"}),
    ("sia_core.attacks.carlini_wagner", "CarliniWagnerL2", {"eps": -0.5}),
    ("sia_core.attacks.carlini_wagner", "CarliniWagnerL2", {"eps": 0.5, "kappa": -1.0}),
    ("sia_core.attacks.carlini_wagner", "CarliniWagnerL2", {"eps": 0.5, "steps": 1.5}),
    ("sia_core.augmentation", "RandomAttributes", {"eps_linf": -0.1}),
    ("sia_core.augmentation", "RandomAttributes", {"attributes": ("sparkle",)}),
    ("sia_core.augmentation", "RandomAttributes", {"seed": 0.5}),
    ("sia_core.robustify.transfer", "TransferConfig", {"eps_linf": 0.0}),
    ("sia_core.robustify.transfer", "TransferConfig", {"eps_l2": -1.0}),
    ("sia_core.robustify.transfer", "TransferConfig", {"n": 0}),
    ("sia_core.robustify.transfer", "TransferConfig", {"sia_steps": 2.5}),
    ("sia_core.robustify.imbalance", "ImbalanceConfig", {"rho": 0.5}),
    ("sia_core.robustify.imbalance", "ImbalanceConfig", {"methods": ("plain", "magic")}),
    ("sia_core.robustify.imbalance", "ImbalanceConfig", {"methods": ()}),
    ("sia_core.robustify.imbalance", "ImbalanceConfig", {"seeds": 0}),
    ("sia_core.robustify.imbalance", "ImbalanceConfig", {"augment_at": 0.0}),
    ("sia_core.robustify.imbalance", "ImbalanceConfig", {"architecture": "vit"}),
    ("sia_core.training", "TrainConfig", {"recipe": "magic"}),
    ("sia_core.training", "TrainConfig", {"epochs": 0}),
    ("sia_core.training", "TrainConfig", {"batch_size": -1}),
    ("sia_core.training", "TrainConfig", {"learning_rate": -1e-3}),
    ("sia_core.training", "TrainConfig", {"recipe": "pgd", "eps": 0.0}),
    # margins and constructed sets (helper B)
    ("sia_core.margins", "InputMarginEstimator", {"norm": "l1"}),
    ("sia_core.margins", "InputMarginEstimator", {"bisection_steps": -1}),
    ("sia_core.margins", "InputMarginEstimator", {"pgd_steps": -1}),
    ("sia_core.margins", "InputMarginEstimator", {"max_eps": -0.5}),
    ("sia_core.features", "ConstructionConfig", {"kind": "d_purple"}),
    ("sia_core.features", "ConstructionConfig", {"kind": "d_det", "n": 0}),
    ("sia_core.features", "ConstructionConfig", {"kind": "d_det", "eps_l2": -1.0}),
    ("sia_core.features", "ConstructionConfig", {"kind": "d_det", "steps": -1}),
    # regions and diagnosis (helper C)
    ("sia_core.regions.importance", "Occlusion", {"patch_size": 0}),
    ("sia_core.regions.importance", "Occlusion", {"stride": 0}),
    ("sia_core.regions.importance", "Occlusion", {"fill": "purple"}),
    ("sia_core.regions.importance", "GradientSaliency", {"smoothgrad_samples": -1}),
    ("sia_core.regions.importance", "GradientSaliency", {"noise_std": -0.1}),
    ("sia_core.regions.importance", "GradCAM", {"batch_size": 0}),
    ("sia_core.regions.importance", "IntegratedGradients", {"steps": 0}),
    ("sia_core.regions.importance", "IntegratedGradients", {"baseline": "purple"}),
    ("sia_core.regions.attack_maps", "EffectWeightedMap", {"eps": -1.0}),
    ("sia_core.regions.attack_maps", "EffectWeightedMap", {"steps": -1}),
    ("sia_core.regions.attack_maps", "MinimalPerturbationMap", {"steps": 0}),
    ("sia_core.regions.attack_maps", "MinimalPerturbationMap", {"overshoot": -0.1}),
    ("sia_core.regions.attack_maps", "LocalizedAttackMap", {"patch_size": 0}),
    ("sia_core.regions.attack_maps", "LocalizedAttackMap", {"eps": -1.0}),
    ("sia_core.regions.neutralization", "NeutralizationConfig", {"fraction": 3.0}),
    ("sia_core.regions.neutralization", "NeutralizationConfig", {"fill": "purple"}),
    ("sia_core.regions.neutralization", "NeutralizationConfig", {"n": 0}),
    ("sia_core.regions.neutralization", "NeutralizationConfig", {"curve_fractions": (0.1, 2.0)}),
    ("sia_core.keypoints.shapes", "KeypointTrainConfig", {"epochs": 0}),
    ("sia_core.keypoints.shapes", "KeypointTrainConfig", {"flaw": "size"}),
    ("sia_core.keypoints.task", "KeypointTask", {"normalizer": "eyes"}),
    ("sia_core.keypoints.task", "KeypointTask", {"reference_form": "outline"}),
    ("sia_core.diagnosis", "DiagnosisConfig", {"n": 0}),
    ("sia_core.diagnosis", "DiagnosisConfig", {"eps_linf": -0.01}),
    ("sia_core.diagnosis", "DiagnosisConfig", {"steps": 0}),
    # data and models (helper D)
    ("sia_core.data.shapes", "ShapesConfig", {"n": 0}),
    ("sia_core.data.shapes", "ShapesConfig", {"spurious": "rotation", "spurious_strength": 0.5}),
    ("sia_core.data.shapes", "ShapesConfig", {"spurious": "hue", "spurious_strength": 2.0}),
    ("sia_core.models.registry", "ModelCard", {**_CARD, "mean": (0.5, 0.5, 0.5)}),
    ("sia_core.models.registry", "ModelCard", {**_CARD, "input_shape": (1, 28)}),
    ("sia_core.models.registry", "ModelCard", {**_CARD, "class_names": ()}),
    # the studies' configs
    ("sia_core.evaluation", "EvaluationConfig", {"attack": "magic"}),
    ("sia_core.evaluation", "EvaluationConfig", {"eps": -0.1}),
    ("sia_core.evaluation", "EvaluationConfig", {"n": 0}),
    ("sia_core.margins", "MarginsConfig", {"n": 0}),
    ("sia_core.margins", "MarginsConfig", {"norm": "l1"}),
    ("sia_core.margins", "MarginsConfig", {"pseudo_fit_n": -1}),
    ("sia_core.margins", "MarginsConfig", {"pseudo_source": "pixels"}),
    ("sia_core.features", "FeatureTrainingConfig", {"architecture": "vit"}),
    ("sia_core.features", "FeatureTrainingConfig", {"eval_eps_l2": -0.5}),
    ("sia_core.features", "FeatureTrainingConfig", {"eval_n": 0}),
    ("sia_core.features", "FeatureTransferConfig", {"architectures": ()}),
    ("sia_core.features", "FeatureTransferConfig", {"attack_eps_l2": -1.0}),
    ("sia_core.features.jpeg_control", "JpegControlConfig", {"seeds": ()}),
    ("sia_core.features.jpeg_control", "JpegControlConfig", {"eps_l2": (0.5, -0.1)}),
    ("sia_core.features.jpeg_control", "JpegControlConfig", {"quality": 0}),
    ("sia_core.features.jpeg_control", "JpegControlConfig", {"epochs": 0}),
    ("sia_core.features", "FeaturesStudyConfig", {"sets": (), "training": None}),
    ("sia_core.training", "TrainConfig", {"recipe": "sia", "eps": 0.01, "attack_step_fraction": 0.2}),
]


def _bad_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments a case sets on purpose (a card's valid fields are only there to make a card)."""
    return {key: value for key, value in kwargs.items() if key not in _CARD or _CARD[key] != value}


def _case_id(case: tuple[str, str, dict[str, Any]]) -> str:
    _, name, kwargs = case
    return f"{name}({', '.join(f'{key}={value!r}' for key, value in _bad_fields(kwargs).items())})"


@pytest.mark.parametrize("case", BAD_VALUES, ids=[_case_id(case) for case in BAD_VALUES])
def test_bad_values_are_refused_when_the_config_is_made(case):
    module, name, kwargs = case
    config_class = getattr(importlib.import_module(module), name)
    with pytest.raises(ConfigError) as refused:
        config_class(**kwargs)
    # the message says which field is wrong, so a user can fix it without reading the code
    assert any(field in str(refused.value) for field in _bad_fields(kwargs)), str(refused.value)


def _engine_modules():
    for info in pkgutil.walk_packages(sia_core.__path__, prefix="sia_core."):
        if not info.name.endswith("__main__"):  # running it would start the CLI
            yield importlib.import_module(info.name)


def _is_config(cls: type) -> bool:
    """A frozen dataclass named ...Config, or a configured callable (an attack, a map method, an estimator)."""
    if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):  # type: ignore[attr-defined]
        return False
    # an attack inherits its __call__ from the one attack base
    return cls.__name__.endswith("Config") or callable(getattr(cls, "__call__", None)) and any(
        "__call__" in vars(base) for base in cls.__mro__[:-1])


def discovered_configs() -> set[str]:
    found = set()
    for module in _engine_modules():
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and _is_config(cls):
                found.add(f"{cls.__module__}.{name}")
    return found


def test_every_config_has_a_bad_value_case():
    covered = {f"{getattr(importlib.import_module(module), name).__module__}.{name}" for module, name, _ in BAD_VALUES}
    missing = sorted(discovered_configs() - covered)
    assert not missing, f"configs without a bad-value case in tests/test_configs.py: {missing}"


def test_discovery_finds_the_known_configs():
    """Guards the discovery itself: if it found nothing, the test above would pass for nothing."""
    found = {name.rsplit(".", 1)[1] for name in discovered_configs()}
    assert {"FGSM", "PGD", "DeepFool", "SemanticAttack", "TrainConfig", "NeutralizationConfig", "ShapesConfig",
            "LocalizedAttackMap", "Occlusion", "InputMarginEstimator"} <= found, found


def test_every_config_accepts_its_own_defaults():
    """A config whose every field has a default is made with them: the defaults pass the config's own checks."""
    made = []
    for qualified in sorted(discovered_configs()):
        module, name = qualified.rsplit(".", 1)
        cls = getattr(importlib.import_module(module), name)
        fields = [field for field in dataclasses.fields(cls) if field.init]
        if all(field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
               for field in fields):
            cls()
            made.append(name)
    assert {"SemanticAttack", "NeutralizationConfig", "Occlusion", "GradCAM", "DiagnosisConfig"} <= set(made), made
