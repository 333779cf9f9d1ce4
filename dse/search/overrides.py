"""Command-line overrides checked before Hydra sees them, so every mistake is one line.

Hydra reports an unknown config (``study=nope``), a key that does not exist (``foo=1``) or bad
override syntax with several lines and exit status 1. ``check_overrides`` finds the same
mistakes first and raises ``ValueError`` with what is wrong, where and how to fix it (with a
"did you mean" for near misses); the app prints it as one line and exits with status 2.
Runs that Hydra must interpret itself (``--cfg``, ``--info``, ``--help``, other config paths)
are left alone.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..files import conf_dir, load_yaml

GROUPS = ("model", "workload", "cost", "space", "search", "hardware", "study")
HYDRA_OWN_FLAGS = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--package",
                   "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                   "--shell-completion", "-sc", "--experimental-rerun", "--resolve", "--version")  # fmt: skip
SYNTAX = "https://hydra.cc/docs/advanced/override_grammar/basic/"


CONFIG_DIR_FLAGS = ("--config-dir", "-cd")


def _choices(group: str, extra_dirs: tuple[Path, ...] = ()) -> list[str]:
    return sorted(
        {p.stem for d in (conf_dir(), *extra_dirs) for p in (d / group).glob("*.yaml")}
    )


def _config_file(group: str, name: str, extra_dirs: tuple[Path, ...]) -> Path | None:
    """The file ``group=name`` selects: the user's config dirs first (Hydra searches them
    before dse's own conf/), then conf/."""
    for d in (*extra_dirs, conf_dir()):
        f = d / group / f"{name}.yaml"
        if f.is_file():
            return f
    return None


def _check_config_file(group: str, name: str, f: Path) -> None:
    """A group's file must be YAML holding a mapping (Hydra ends in a 100-line traceback)."""
    import yaml

    try:
        data = load_yaml(f.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(
            f"{group}={name}: {f} is not valid YAML{where} ({problem}); fix the file"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{group}={name}: cannot read {f} ({e.__class__.__name__})") from None
    if data is not None and not isinstance(data, dict):
        raise ValueError(
            f"{group}={name}: {f} holds a {type(data).__name__}, not a mapping; a config file "
            "is `key: value` lines"
        )


def _extra_config_dirs(argv: list[str]) -> tuple[list[str], tuple[Path, ...]]:
    """(argv without --config-dir/-cd DIR, the dirs): Hydra searches a config dir before the
    primary conf/, so groups may name files that live there."""
    rest, dirs = [], []
    it = iter(range(len(argv)))
    for i in it:
        a = argv[i]
        flag, eq, value = a.partition("=")
        if flag in CONFIG_DIR_FLAGS:
            if not eq:
                value = argv[i + 1] if i + 1 < len(argv) else ""
                next(it, None)
            d = Path(value).expanduser()
            if not value or not d.is_dir():
                raise ValueError(
                    f"{flag} {value!r}: not a folder; give a folder holding config groups "
                    "(e.g. DIR/space/NAME.yaml)"
                )
            dirs.append(d.resolve())
            continue
        rest.append(a)
    return rest, tuple(dirs)


def _did_you_mean(value: str, options: list[str]) -> str:
    near = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
    return f"did you mean {near[0]}? " if near else ""


# Study keys that hold a {metric: {min, max}} mapping: a plain ``key={...}`` on the command line
# merges into the study's mapping (as the README shows), where Hydra would refuse any metric the
# study does not already name. ``key.METRIC=null`` drops one.
MERGED_MAPPINGS = ("constraints", "best_where")


def merge_mapping_overrides(argv: list[str]) -> list[str]:
    """``argv`` with each plain ``constraints={...}`` / ``best_where={...}`` written as Hydra's
    force-add ``++key={...}``, which merges the given metrics into the study's mapping."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    out = []
    for arg in argv:
        key = arg.split("=", 1)[0]
        if key in MERGED_MAPPINGS and "=" in arg:
            try:
                (o,) = parser.parse_overrides([arg])
            except OverrideParseException:
                out.append(arg)  # check_overrides reports the syntax error
                continue
            if not o.is_sweep_override() and isinstance(o.value(), dict):
                arg = "++" + arg
        out.append(arg)
    return out


def check_overrides(argv: list[str]) -> None:
    """Raise ValueError (one line) for the first override Hydra would reject."""
    argv, extra_dirs = _extra_config_dirs(argv)
    if any(a.split("=")[0] in HYDRA_OWN_FLAGS for a in argv):
        return
    args = [a for a in argv if a not in ("-m", "--multirun")]
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed = []
    for arg in args:
        try:
            parsed += parser.parse_overrides([arg])
        except OverrideParseException as e:
            msg = str(e).splitlines()[0]
            raise ValueError(f"override {arg!r} is not valid override syntax ({msg}); see {SYNTAX}") from e
    for o in parsed:  # hydra.searchpath=[file://DIR] adds config dirs as --config-dir does
        if o.key_or_group == "hydra.searchpath" and isinstance(o.value(), list):
            extra_dirs += tuple(
                Path(str(v)[len("file://") :]).resolve()
                for v in o.value()
                if str(v).startswith("file://")
            )
    for o in parsed:
        if o.key_or_group in GROUPS and not o.is_delete() and o.package is None:
            _check_group(o.key_or_group, o, extra_dirs)
        if o.key_or_group == "run" and not o.is_sweep_override():
            _check_run_name(str(o.value()))
    if not any(o.is_sweep_override() for o in parsed):
        given = any(o.key_or_group == "hydra.searchpath" for o in parsed)
        searchpath = [f"hydra.searchpath=[{','.join(f'file://{d}' for d in extra_dirs)}]"]
        _check_composes(args + (searchpath if extra_dirs and not given else []))


def _check_run_name(name: str) -> None:
    """``run=NAME`` names a folder under results_dir/<study>/; it must not climb out of it."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("~"):
        raise ValueError(
            f"run={name!r}: a run is a plain folder name under results_dir/<study>/ (no '/', "
            "'..' or '~'); use results_dir= to write somewhere else"
        )


def _check_group(group: str, override, extra_dirs: tuple[Path, ...] = ()) -> None:
    values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
    options = _choices(group, extra_dirs)
    for v in values:
        if v is None:
            raise ValueError(
                f"{group}=null: a config group cannot be set to null on the command line; leave "
                f"it out to keep the study's choice, or drop it with ~{group}"
            )
        if str(v) not in options:
            raise ValueError(
                f"{group}={v}: no such config (conf/{group}/{v}.yaml); {_did_you_mean(str(v), options)}"
                f"choose one of {', '.join(options)}"
            )
        _check_config_file(group, str(v), _config_file(group, str(v), extra_dirs))


def _check_composes(overrides: list[str]) -> None:
    """Compose the config as Hydra will (keys that do not exist, wrong nesting, ...)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .study import compose

    try:
        compose(None, overrides)
    except (HydraException, OmegaConfBaseException) as e:
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()] or [type(e).__name__]
        hint = next((ln for ln in lines[1:] if ln.startswith("To append")), "")
        key = next((o.split("=")[0].lstrip("+~") for o in overrides if f"'{o.split('=')[0].lstrip('+~')}'" in lines[0]), "")
        near = ""
        if key:  # the keys of the config the other overrides compose (their study, engine)
            others = [o for o in overrides if o.split("=")[0].lstrip("+~") != key]
            try:
                cfg, _ = compose(None, others)
            except (HydraException, OmegaConfBaseException):
                cfg, _ = compose(None, [])
            near = _did_you_mean(key, [k for k in _keys(cfg) if not k.endswith("_target_")])
        fix = hint or "check the key names in conf/dse.yaml and the study"
        if key.startswith("search.") and key.count(".") == 1:  # an engine's setting
            takes = sorted(k[len("search.") :] for k in _keys(cfg)
                           if k.startswith("search.") and k.count(".") == 1 and "_target_" not in k)  # fmt: skip
            fix = f"this engine takes {', '.join(takes)} (conf/search/)"
            if key.split(".")[1] in ("sensitivities", "refine", "top"):
                fix += "; gradients come with search=gradient or search=sensitivities"
        raise ValueError(f"{lines[0].rstrip('.')}: {near}{fix}") from e


def _keys(cfg, prefix: str = "") -> list[str]:
    """Every dotted key of a config (what an override may name)."""
    from omegaconf import DictConfig

    out = []
    for k in cfg:
        if k == "hydra":
            continue
        path = f"{prefix}{k}"
        out.append(path)
        v = cfg.get(k)
        if isinstance(v, DictConfig):
            out += _keys(v, path + ".")
    return out
