"""Thin Hydra wrapper shared by every command-line entry point.

Bad input must give one line naming the dotted key and what is allowed, exit code 2, no traceback
and no output folder. Hydra's own errors (unknown key, wrong type, unknown option of a group) would
print several lines and exit 1, and would do so after the run folder exists. So each entry point
first composes its config with Hydra's compose API and validates it; only a valid config reaches
``@hydra.main``. A genuine bug still raises and keeps its traceback (exit 1).
"""

from __future__ import annotations

import re
import sys
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


def compose_config(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with overrides, raising ConfigError on bad input."""
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
