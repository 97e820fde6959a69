"""Errors caused by the user's input or machine, reported as one line without a traceback."""

import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError


class UserError(Exception):
    """A problem the user can fix; the entry points print its message and exit with status 1."""


class DivergenceError(UserError):
    """A loss became NaN or infinite: the run stops, keeping the checkpoints saved before."""


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """A UserError inside stops the program with its one line on stderr and exit status 1."""
    try:
        yield
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def first_line(error: BaseException, most: int = 300) -> str:
    """The first line of an exception's message, for a one-line error (its type's name when it has none); a line
    ending in ',' or ':' (a list's heading), or mid-sentence before an unindented line (a wrapped sentence), goes on
    with the next; the line is cut at ``most`` characters."""
    lines = [line.rstrip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    joined = lines.pop(0).strip()
    # torchvision's "Error downloading X:", "Tried URL, got:", "<the error>"; Hydra's blocklist message, wrapped
    # mid-sentence; not OmegaConf's indented "    full_key: a" after its message
    while lines and (joined[-1] in ",:" or joined[-1].isalnum() and not lines[0][0].isspace()):
        joined = f"{joined} {lines.pop(0).strip()}"
    return joined if len(joined) <= most else joined[: most - 3] + "..."


MAX_SEED = 2**32 - 1  # the largest seed that numpy (seeded by Lightning's seed_everything) accepts


def require_int(name: str, value: Any, least: int, most: int | None = None) -> int:
    """``value`` if it is an integer from ``least`` to ``most`` (no limit when None), else a UserError naming
    ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least or (most is not None and value > most):
        allowed = {0: "a non-negative integer", 1: "a positive integer"}.get(least, f"an integer of at least {least}")
        if most is not None:
            allowed = f"an integer from {least} to {most}"
        raise UserError(f"{name} must be {allowed}, got {value!r}")
    return value


def require_bool(name: str, value: Any) -> bool:
    """``value`` if it is true or false, else a UserError naming ``name`` and the value."""
    if not isinstance(value, bool):
        raise UserError(f"{name} must be true or false, got {value!r}")
    return value


def require_number(name: str, value: Any, positive: bool = False, most: float | None = None) -> float:
    """``value`` if it is a finite number (above 0 when ``positive``, at most ``most``), else a UserError naming
    ``name`` and it."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not is_number or (positive and value <= 0) or (most is not None and value > most):
        allowed = f"{'a positive' if positive else 'a'} finite number" + ("" if most is None else f" up to {most:g}")
        raise UserError(f"{name} must be {allowed}, got {value!r}")
    return value


def require_seconds(name: str, value: Any, zero: str) -> float:
    """``value`` if it is a finite number of seconds, 0 (meaning ``zero``) or more, else a UserError naming ``name``."""
    if not (require_number(name, value) >= 0):
        raise UserError(f"{name} must be 0 ({zero}) or more, got {value}")
    return value


def expand_home(path: str | Path | int, name: str) -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded; a UserError naming ``name`` where there is no such home.
    A whole number is a folder's name (Hydra reads ``data.root=999`` as a number)."""
    if isinstance(path, int) and not isinstance(path, bool):
        path = str(path)
    try:
        return Path(path).expanduser()
    except RuntimeError as error:  # ~nobody/...: "Could not determine home directory."
        raise UserError(f"{name} {path}: {first_line(error)} (no such user?)") from error


def require_writable_folder(name: str, folder: str | Path) -> Path:
    """``folder``, created if missing, when a file can be written there; else a UserError naming ``name``."""
    folder = expand_home(folder, name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()  # leaves nothing behind
    except OSError as error:
        raise UserError(f"cannot write the {name} {folder}: {error.strerror}") from error
    return folder


def outermost_missing(folder: str | Path) -> Path | None:
    """The outermost folder on ``folder``'s absolute path that does not exist yet (making ``folder`` makes it), or
    None."""
    folder = Path(os.path.abspath(folder))
    if folder.exists() or folder.is_symlink():
        return None
    while not folder.parent.exists():
        folder = folder.parent
    return folder


def remove_made_folders(folder: str | Path, outermost: Path | None) -> None:
    """Remove ``folder`` and the folders above it up to ``outermost`` (what making it made: :func:`outermost_missing`;
    None: nothing), each only while empty."""
    if outermost is None:
        return
    folder = Path(os.path.abspath(folder))
    for made in (folder, *folder.parents):
        if not made.is_relative_to(outermost):
            return
        with suppress(OSError):  # not empty (the user's or the command's files), or never made: it stays
            made.rmdir()


@cache
def declared_settings(config_file: Path) -> DictConfig:
    """The settings that ``config_file`` declares, read once per process (read-only: callers share it)."""
    declared = OmegaConf.load(config_file)
    OmegaConf.set_readonly(declared, True)
    return declared


def section_settings(config_file: Path, name: str) -> str:
    """The settings of ``config_file``'s section ``name`` as a user sets them: ``metrics.features=..., ...``."""
    return ", ".join(f"{name}.{key}=..." for key in declared_settings(config_file)[name])


def require_sections(
    config: DictConfig,
    config_file: Path,
    message: Callable[[str], str],
    sections: Collection[str] = (),
    also: Iterable[str] = (),
    optional: Iterable[str] = (),
) -> None:
    """Refuse, with ``message(name)``, a top-level setting of ``config_file`` (or ``also``) removed with ``~``, unless
    ``optional``, or one of its ``sections`` replaced by a value (``latent=5``)."""
    needed = (declared_settings(config_file).keys() | set(also)) - {"defaults", "hydra", *optional}
    for name in [*sorted(needed), *sections]:
        if name not in config or name in sections and not isinstance(config[name], DictConfig):
            raise UserError(message(name))


def refuse_null_removals(arguments: Iterable[str], config_file: Path, message: Callable[[str], str]) -> None:
    """Refuse ``~KEY`` on the command line, with ``message(KEY)``, where ``config_file`` sets KEY to null: Hydra
    would answer that KEY does not exist, with a second line about its stack trace."""
    settings = OmegaConf.to_container(declared_settings(config_file), resolve=False)
    for argument in arguments:
        if not argument.startswith("~"):
            continue
        key, value = argument[1:].partition("=")[0], settings
        for name in key.split("."):
            value = value.get(name, "absent") if isinstance(value, dict) else "absent"
        if value is None:
            raise UserError(message(key))


def check_hydra_arguments(
    arguments: list[str], config_dir: Path, config_name: str, removal_refusal: Callable[[str], str], sweep_advice: str
) -> None:
    """Refuse in one line what Hydra would answer in several or with a traceback: ``~KEY`` of a null setting (with
    ``removal_refusal(KEY)``), ``KEY=~/...``, ``hydra.sweeper.params`` (with ``sweep_advice``) and a misspelt setting
    of ``config_dir/config_name.yaml``."""
    refuse_null_removals(arguments, config_dir / f"{config_name}.yaml", removal_refusal)
    refuse_home_shorthand(arguments)
    refuse_sweeper_params(arguments, sweep_advice)
    refuse_unknown_overrides(arguments, config_dir, config_name)


def refuse_sweeper_params(arguments: Iterable[str], advice: str) -> None:
    """Refuse ``hydra.sweeper.params`` on the command line, with ``advice``: Hydra fails on it with a traceback."""
    for argument in arguments:
        key = argument.lstrip("+~").partition("=")[0]
        if key.startswith("hydra.sweeper.params") or key == "hydra.sweeper" and "params" in argument:
            raise UserError(f"{argument}: Hydra cannot take hydra.sweeper.params on the command line; {advice}")


def refuse_home_shorthand(arguments: Iterable[str]) -> None:
    """Refuse ``KEY=~/...`` (quoted, so the shell left the ~): Hydra's parser fails on it with several lines."""
    for argument in arguments:
        key, equals, value = argument.partition("=")
        if equals and re.match(r"^(.*[,\[])?\s*~", value) and not key.startswith("~"):  # a sweep's or list's item too
            raise UserError(
                f"{argument}: Hydra cannot read a value that starts with ~; give the whole path, such as"
                f" {Path.home()} for ~"
            )


# Hydra's flags that print or run the config that the overrides compose, and how many values follow each
CONFIG_FLAGS = {"-m": 0, "--multirun": 0, "--resolve": 0, "--cfg": 1, "-c": 1, "--package": 1, "-p": 1}


def hydra_overrides(arguments: list[str]) -> list[str] | None:
    """The overrides among ``arguments``, past the CONFIG_FLAGS and their values; None with any other flag
    (``--config-dir``, ``--info``, ...), with which Hydra does its own checks."""
    overrides, values_to_skip = [], 0
    for argument in arguments:
        flag, equals, _ = argument.partition("=")
        if values_to_skip:
            values_to_skip -= 1
        elif not argument.startswith("-"):
            overrides.append(argument)
        elif flag in CONFIG_FLAGS:
            values_to_skip = 0 if equals else CONFIG_FLAGS[flag]
        else:
            return None
    return overrides


def refuse_unknown_overrides(arguments: list[str], config_dir: Path, config_name: str) -> None:
    """Refuse ``KEY=VALUE`` for a KEY the config does not have (a typo), or a value that a typed setting of Hydra's
    cannot take, in one line, as Hydra will compose it: Hydra says so in six lines, suggesting ``+KEY=VALUE`` for a
    typo, which adds a setting nothing reads."""
    if (overrides := hydra_overrides(arguments)) is None:
        return
    run_mode = RunMode.MULTIRUN if {"-m", "--multirun"} & set(arguments) else RunMode.RUN
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        try:
            GlobalHydra.instance().config_loader().load_configuration(config_name, overrides, run_mode)
        except Exception as error:  # noqa: BLE001 - any other failure: Hydra reports it as it always has
            if message := composition_refusal(error, overrides):
                raise UserError(message) from None


def composition_refusal(error: Exception, overrides: list[str]) -> str | None:
    """One line for Hydra's failure to compose ``overrides`` because one sets a KEY the config does not have (naming
    the settings there) or gives a typed setting of Hydra's a value it cannot take; None for any other failure."""
    cause = error.__cause__ if isinstance(error, ConfigCompositionException) else None
    if not isinstance(cause, ConfigAttributeError | ConfigKeyError | ValidationError) or cause.full_key is None:
        return None
    key = str(cause.full_key)
    argument = next((item for item in overrides if f"{item.partition('=')[0]}.".startswith(f"{key}.")), key)
    if isinstance(cause, ValidationError):
        return f"{argument}: {first_line(cause)}"
    node = cause.parent_node
    if node is None:
        return None
    parent = key.rpartition(".")[0]
    if left_out := next((item for item in overrides if item.lstrip("+") == f"{parent}=null"), None):
        return f"{argument}: {left_out} leaves {parent} out, so it has no settings; give one or the other"
    settings = ", ".join(sorted(str(name) for name in node if not str(name).startswith("_") and name != "hydra"))
    also = f"; +{argument} passes it to {node['_target_']}, if that takes it" if "_target_" in node else ""
    if not settings:
        return f"{argument}: {key} is no setting yet; +{argument} adds it"
    return f"{argument}: {key} is no setting (a typo?); the settings here: {settings}{also}"


def require_declared(
    config: DictConfig,
    config_file: Path,
    sections: Iterable[str] = (),
    group_nodes: Iterable[str] = (),
    prefix: str = "",
) -> None:
    """Refuse a setting that ``config_file`` does not declare, at the top (beside the ``group_nodes`` that config
    groups set) or in one of its ``sections`` (a misspelt ``+key=value``: Hydra adds any key given with +, and nothing
    would read it). ``prefix``: where ``config`` sits in the whole config, for the message (``paths.``)."""
    declared = declared_settings(config_file)
    top_level = (declared.keys() - {"defaults"}) | set(group_nodes)  # with hydra's, which Hydra's callbacks see
    for where, keys, known in [(prefix, config, top_level)] + [
        (f"{prefix}{name}.", config[name], set(declared[name])) for name in sections
    ]:
        if unknown := sorted(set(keys) - known):
            settings = ", ".join(sorted(known - {"hydra"}))
            raise UserError(f"{where}{unknown[0]} is no setting (a typo?); the settings here: {settings}")
