"""What the person who starts the server asked for: their models and datasets, from the command line
(`streamlit run app.py -- --model SPEC [--weights ...] --data SPEC`) or a config file (`--config FILE`, or
`sia_explorer.toml` in the folder the server starts in).

Security rule: only these may name code (python:, exported:). A visitor to the app can choose among them and
upload weights or images, never give a spec that imports or unpickles code.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from sia_core.cli import add_model_arguments
from sia_core.errors import SiaError
from sia_core.models.user_models import ModelOptions

CONFIG_FILE = "sia_explorer.toml"
CONFIG_ENV = "SIA_EXPLORER_CONFIG"  # a config file for servers started without arguments (tests, services)
_PATH_PREFIXES = ("python", "exported", "folder", "fashion-mnist", "mnist", "cifar10", "imagefolder", "npz")


@dataclass(frozen=True)
class OperatorModel:
    spec: str
    options: ModelOptions = ModelOptions()
    data: Optional[str] = None  # the dataset the model was made for, offered first with it


@dataclass(frozen=True)
class LaunchConfig:
    models: tuple[OperatorModel, ...] = ()
    datasets: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # what could not be read, shown in the sidebar instead of a crash
    # whether a visitor may type a path on this server (a dataset folder, a saved set): off for a shared server,
    # where it would let anyone read image folders and probe which paths exist
    server_paths: bool = True

    def model(self, spec: str) -> Optional[OperatorModel]:
        return next((model for model in self.models if model.spec == spec), None)


def _rebased(spec: str, base: Path) -> str:
    """A spec with its relative path made absolute against `base` (the config file's folder)."""
    prefix, separator, reference = spec.partition(":")
    if not separator or prefix not in _PATH_PREFIXES:
        return spec
    path, colon, factory = reference.rpartition(":") if prefix == "python" else (reference, "", "")
    if not path or Path(path).expanduser().is_absolute() or (prefix == "python" and not path.endswith(".py")):
        return spec  # python:package.module:Factory imports by module name
    return f"{prefix}:{base / path}{colon}{factory}"


def short_spec(spec: str) -> str:
    """A spec as a label: folders left out of its paths ("python:/home/a/lenet.py:LeNet" -> "python:lenet.py:LeNet")."""
    prefix, separator, reference = spec.partition(":")
    if not separator:
        return spec
    path, colon, factory = reference.rpartition(":") if prefix == "python" else (reference, "", "")
    return f"{prefix}:{Path(path).name if '/' in path else path}{colon}{factory}"


def _from_table(table: Mapping[str, Any], base: Path) -> OperatorModel:
    unknown = set(table) - {"spec", "weights", "input_shape", "mean", "std", "classes", "download", "random_init",
                            "data"}
    if unknown or "spec" not in table:
        raise SiaError(f"A [[model]] needs spec = \"...\" and takes weights, input_shape, mean, std, classes, "
                       f"download, random_init, data; got {sorted(table)}.")
    weights = table.get("weights")
    options = ModelOptions.parse(weights=None if weights is None else base / Path(weights).expanduser(),
                                 input_shape=table.get("input_shape"), mean=table.get("mean"), std=table.get("std"),
                                 classes=table.get("classes"), download=bool(table.get("download", False)),
                                 random_init=bool(table.get("random_init", False)))
    data = table.get("data")
    return OperatorModel(_rebased(str(table["spec"]), base), options, None if data is None else _rebased(data, base))


def read_config_file(path: Path) -> LaunchConfig:
    """`[[model]]` tables (spec, weights, input_shape, mean, std, classes, data) and `[[data]]` tables (spec);
    relative paths are relative to the file."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SiaError(f"Could not read the config file {path}: {error}") from error
    base = path.expanduser().resolve().parent
    models = tuple(_from_table(table, base) for table in document.get("model", ()))
    datasets = tuple(_rebased(str(table["spec"]), base) for table in document.get("data", ()) if "spec" in table)
    server_paths = document.get("server_paths", True)
    if not isinstance(server_paths, bool):
        raise SiaError(f"server_paths in {path.name} must be true or false, got {server_paths!r}.")
    return LaunchConfig(models, datasets, server_paths=server_paths)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamlit run app.py --", add_help=False, exit_on_error=False)
    add_model_arguments(parser, required=False)
    parser.add_argument("--config", help=f"a {CONFIG_FILE} listing models and datasets")
    parser.add_argument("--no-server-paths", action="store_true",
                        help="visitors choose among the embedded data, uploads and the operator's datasets, and type "
                             "no path on this server (for a shared server)")
    return parser


def parse_launch(argv: Sequence[str], *, cwd: Path, environ: Mapping[str, str]) -> LaunchConfig:
    """The operator's models and datasets: the arguments after `--`, the config file they name (or $SIA_EXPLORER_CONFIG,
    or sia_explorer.toml in `cwd`). Anything unreadable becomes a problem to show, never an exception."""
    problems: list[str] = []
    models: list[OperatorModel] = []
    datasets: list[str] = []
    config_path: Optional[Path] = None
    server_paths = True
    try:
        args, unknown = _parser().parse_known_args(list(argv))
        if unknown:
            problems.append(f"Unknown arguments ignored: {' '.join(unknown)}")
        if args.model:
            options = ModelOptions.parse(weights=args.weights, input_shape=args.input_shape, mean=args.mean,
                                         std=args.std, classes=args.classes, download=args.download,
                                         random_init=args.random_init)
            if options.weights is not None:
                options = ModelOptions(**{**options.__dict__, "weights": cwd / options.weights})
            models.append(OperatorModel(_rebased(args.model, cwd), options,
                                        _rebased(args.data, cwd) if args.data else None))
        elif args.data:
            datasets.append(_rebased(args.data, cwd))
        config_path = Path(args.config) if args.config else None
        server_paths = not args.no_server_paths
    except (argparse.ArgumentError, SiaError) as error:
        problems.append(f"The command-line arguments could not be read: {error}")
    if config_path is None and environ.get(CONFIG_ENV):
        config_path = Path(environ[CONFIG_ENV])
    if config_path is None and (cwd / CONFIG_FILE).is_file():
        config_path = cwd / CONFIG_FILE
    if config_path is not None:
        try:
            from_file = read_config_file(config_path if config_path.is_absolute() else cwd / config_path)
            models.extend(from_file.models)
            datasets.extend(from_file.datasets)
            server_paths = server_paths and from_file.server_paths  # either may turn them off
        except SiaError as error:
            problems.append(str(error))
    datasets = [spec for spec in dict.fromkeys([m.data for m in models if m.data] + datasets)]
    return LaunchConfig(tuple(models), tuple(datasets), tuple(problems), server_paths=server_paths)


def launch_config_files(argv: Sequence[str], cwd: Optional[Path] = None,
                        environ: Optional[Mapping[str, str]] = None) -> list[Path]:
    """The config files `parse_launch` may read for these arguments (for a quick look before the server starts)."""
    cwd, environ = cwd or Path.cwd(), os.environ if environ is None else environ
    files = [cwd / CONFIG_FILE]
    if environ.get(CONFIG_ENV):
        files.append(Path(environ[CONFIG_ENV]))
    args = list(argv)
    if "--config" in args and args.index("--config") + 1 < len(args):
        files.append(cwd / args[args.index("--config") + 1])
    return files


def launch_config() -> LaunchConfig:
    """This server's launch config. `streamlit run app.py -- ARGS` leaves ARGS in sys.argv after the script's path;
    any other host (a test runner) passes none."""
    argv = sys.argv[1:] if sys.argv and Path(sys.argv[0]).name == "app.py" else []
    return parse_launch(argv, cwd=Path.cwd(), environ=os.environ)
