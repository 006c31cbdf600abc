"""Thin Hydra wrapper shared by every command-line entry point.

Bad input must give one line naming the dotted key and what is allowed, exit code 2, no traceback
and no output folder. Hydra's own errors (unknown key, wrong type, unknown option of a group) would
print several lines and exit 1, and would do so after the run folder exists. So each entry point
first composes its config with Hydra's compose API and validates it; only a valid config reaches
``@hydra.main``. A genuine bug still raises and keeps its traceback (exit 1).
"""

from __future__ import annotations

import atexit
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from sim.errors import ConfigError

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")

_FLAGS_WITH_VALUE = {"--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd"}
SCENARIO_FILE_OPTION = "from_file"  # the scenario group's option a scenario_file= becomes


def fail(message: str) -> None:
    """Print one error line to stderr and exit with code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _overrides(argv: list[str]) -> tuple[list[str], bool, bool]:
    """Split argv into overrides, whether it is a multirun, and whether Hydra handles it alone."""
    overrides, multirun, passthrough, skip = [], False, False, False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-m", "--multirun"):
            multirun = True
        elif arg in _FLAGS_WITH_VALUE:
            skip = True
        elif arg.startswith("-"):
            passthrough = True  # --help, --cfg, --info, ...: Hydra's own business
        else:
            overrides.append(arg)
    return overrides, multirun, passthrough


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def describe_hydra_error(exc: BaseException, config_name: str) -> ConfigError:
    """Turn a Hydra/OmegaConf composition error into a ConfigError naming the key."""
    if isinstance(exc, MissingConfigException):
        match = re.search(r"Could not (?:find|load) '([^/']+)/([^']+)'", str(exc))
        if match:
            group, name = match.groups()
            found = exc.options or [p.stem for p in Path(CONF_DIR, group).glob("*.yaml")]
            options = sorted(o for o in found if not o.endswith("_schema"))
            return ConfigError(group, "one of " + ", ".join(options), name)
    if isinstance(exc, OverrideParseException):
        line = str(exc).splitlines()[0]
        return ConfigError("", "", message=f"command line: cannot parse an override ({line})")
    cause = _root_cause(exc)
    key = str(getattr(cause, "full_key", None) or "")
    text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    named = re.search(r"full_key: (\S+)", str(exc))
    if (
        not key and named and "ConfigKeyError" in str(exc)
    ):  # a key of a group's file (scenario_file)
        key, parent = named.group(1), named.group(1).rpartition(".")[0]
        known = ", ".join(_known_keys(config_name, parent))
        return ConfigError(key, "", message=f"{key}: unknown key; the keys of {parent} are {known}")
    if "does not support deletion" in f"{exc} {text}":
        match = re.search(r"'~?([\w.]+)'", str(exc))
        key = key or (match.group(1) if match else "config")
        return ConfigError(
            key, "", message=f"{key}: is required by the schema; it cannot be deleted"
        )
    if isinstance(cause, MissingMandatoryValue):
        return ConfigError(key, "given (it is required and has no default)")
    if isinstance(cause, ConfigKeyError | ConfigAttributeError):
        parent = key.rpartition(".")[0]
        known = ", ".join(_known_keys(config_name, parent))
        where = parent or "the top level"
        return ConfigError(key, "", message=f"{key}: unknown key; the keys of {where} are {known}")
    if isinstance(cause, ValidationError):
        return ConfigError(key, f"of type {_expected_type(cause)}", getattr(cause, "value", None))
    return ConfigError(key, "", message=f"{key}: {text}" if key else text)


def _known_keys(config_name: str, parent: str) -> list[str]:
    """The keys of ``parent`` in the default config (for "unknown key" messages)."""
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            node = compose(config_name=config_name)
        node = OmegaConf.select(node, parent) if parent else node
    except (ConfigCompositionException, OmegaConfBaseException):
        return []
    return sorted(str(k) for k in node) if isinstance(node, DictConfig) else []


def _expected_type(cause: BaseException) -> str:
    """Name the type a ValidationError wanted: the node's (FloatNode: float), else ref_type."""
    node = type(getattr(cause, "child_node", None)).__name__
    if node.endswith("Node") and node not in ("AnyNode", "Node", "NoneType"):
        return node.removesuffix("Node").lower()
    ref = getattr(cause, "ref_type", None)
    return getattr(ref, "__name__", None) or str(ref or "the schema's type")


def with_scenario_file(overrides: list[str]) -> list[str]:
    """``scenario_file=PATH``: that file replaces the default scenario, overrides on top.

    The file (a whole scenario, as ``conf/scenario/default.yaml``) is copied into a temporary
    config folder as the ``scenario`` group's option ``from_file``, which Hydra then composes
    as it would ``scenario=default``: its schema checks every key, and ``scenario.*``
    overrides apply on top. The ``scenario_file`` override stays, so run.json records it.
    """
    given = [o for o in overrides if o.split("=", 1)[0].lstrip("+") == "scenario_file"]
    if not given:
        return overrides
    pairs = [o.split("=", 1) for o in overrides if "=" in o]
    chosen = [value for key, value in pairs if key.lstrip("+~") == "scenario"]
    if any(name != SCENARIO_FILE_OPTION for name in chosen):  # a preset would be silently dropped
        raise ConfigError("scenario_file", "a scenario file or scenario=NAME, not both", chosen[-1])
    path = Path(given[-1].split("=", 1)[1])
    if "," in str(path) or not path.is_file() or path.suffix not in (".yaml", ".yml"):
        raise ConfigError("scenario_file", "an existing .yaml file (one, not a sweep)", str(path))
    try:
        text = path.read_text(encoding="utf-8")
        ok = isinstance(OmegaConf.create(text), DictConfig)
    except (OSError, UnicodeDecodeError, OmegaConfBaseException, ValueError):
        ok = False
    if not ok:
        raise ConfigError("scenario_file", "a YAML mapping (a scenario)", str(path))
    folder = Path(tempfile.mkdtemp(prefix="funnelsim_scenario_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / "scenario").mkdir()
    (folder / "scenario" / f"{SCENARIO_FILE_OPTION}.yaml").write_text(text, encoding="utf-8")
    rest = [o for o in overrides if o.split("=", 1)[0] not in ("scenario", "hydra.searchpath")]
    return [*rest, f"scenario={SCENARIO_FILE_OPTION}", f"hydra.searchpath=[file://{folder}]"]


def compose_config(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with overrides, raising ConfigError on bad input."""
    overrides = with_scenario_file(overrides)
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides)
        OmegaConf.resolve(cfg)
    except (ConfigCompositionException, OverrideParseException, OmegaConfBaseException) as exc:
        raise describe_hydra_error(exc, config_name) from None
    _find_missing(cfg)
    return cfg


def _find_missing(cfg: Any, prefix: str = "") -> None:
    """Raise MissingMandatoryValue-style errors for any '???' left in the config."""
    if isinstance(cfg, DictConfig):
        for key in cfg:
            full = f"{prefix}{key}"
            if OmegaConf.is_missing(cfg, key):
                raise ConfigError(full, "given (it is required and has no default)")
            _find_missing(cfg[key], full + ".")


def hydra_app(
    config_name: str,
    task: Callable[[DictConfig], Any],
    validate: Callable[[DictConfig], Any] | None = None,
    argv: list[str] | None = None,
) -> None:
    """Run ``task(cfg)`` as a Hydra app after composing and validating the config.

    Args:
        config_name: The primary config in ``conf/`` (``config`` for experiments.run).
        task: The work, called by ``@hydra.main`` with the composed config. A ConfigError raised
            inside it (e.g. by a multirun job) still gives one line and exit 2.
        validate: Called on the composed config before Hydra creates any output folder; raises
            ConfigError on bad values.
        argv: Command-line arguments (default ``sys.argv[1:]``).
    """
    argv = sys.argv[1:] if argv is None else argv
    overrides, multirun, passthrough = _overrides(argv)
    try:
        extra = with_scenario_file(overrides)
    except ConfigError as exc:
        fail(str(exc))
    if extra is not overrides:  # the same rewrite for Hydra's own composition below
        argv = [a for a in argv if a not in overrides] + extra
        overrides = extra
    if not passthrough:
        try:
            # A multirun's sweep values ("seed=1,2,3") are checked job by job inside the task.
            if not multirun:
                cfg = compose_config(config_name, overrides)
                if validate is not None:
                    validate(cfg)
        except ConfigError as exc:
            fail(str(exc))

    def _task(cfg: DictConfig) -> Any:
        try:
            if validate is not None:
                validate(cfg)
            return task(cfg)
        except ConfigError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            # Finished replicates are already on disk (one atomic file each): say how to resume.
            print("interrupted: finished work is kept; run the same command again into the "
                  "same folder (hydra.run.dir=...) to resume", file=sys.stderr)  # fmt: skip
            sys.exit(130)

    sys.argv = [sys.argv[0], *argv]
    main = hydra.main(config_path=CONF_DIR, config_name=config_name, version_base="1.3")(_task)
    main()
