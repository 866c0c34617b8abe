"""Validation of the workflow configuration, before any job runs.

JSON Schema (``workflow/schemas/config.schema.yaml``) checks types, ranges and
unknown keys and fills defaults; the allowed names of activations and targets are
taken from the registries (:func:`with_registries`), not written in the schema.
The checks below add what a schema cannot say: non-finite numbers, ranges.
Every failure raises :class:`ConfigError` with one message naming the key,
the reason and the fix.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jsonschema
import yaml

# libyaml's parser where PyYAML has it (every wheel does): ten times faster than the pure-Python
# one, which every Snakemake invocation would pay on each YAML file it reads at parse time.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# The configuration's schema, beside the package in the workflow's own folder.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def safe_load(text_or_stream):
    return yaml.load(text_or_stream, Loader=SafeLoader)


@functools.cache
def training_keys() -> tuple[str, ...]:
    """The optimisation settings of an experiment section (the schema's ``training``
    definition), sorted: what a training job's ``hyper`` holds."""
    return tuple(sorted(safe_load(SCHEMA_PATH.read_text())["definitions"]["training"]["properties"]))


def hyper(variant) -> dict:
    """A variant's optimisation settings (an actflow.variants.Variant; the study's experiments
    are variants too): every training key of its experiment section, none of its data."""
    return {k: variant.settings[k] for k in training_keys()}


class ConfigError(ValueError):
    pass


# Keys that only say what to do with a finished run (pack it, compare it with another): the
# manifest records the config without them, so that setting them reruns nothing, and a
# comparison never counts them as a difference between runs.
AFTER_RUN_KEYS = ("compare_with", "bundle_weights")


def _strict_integers(cls):
    """Integers are ints: 13.0 or "1e3" (YAML reads 1e3 as text, a float once a number) are
    refused rather than converted, so that the value a job receives is the value written, and
    a fractional value can never be truncated silently. Booleans are not integers."""
    def is_integer(checker, instance):
        return isinstance(instance, int) and not isinstance(instance, bool)

    checker = cls.TYPE_CHECKER.redefine("integer", is_integer)
    return jsonschema.validators.extend(cls, type_checker=checker)


def _with_defaults(cls):
    validate_props = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = _copy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


def _copy(value):
    return safe_load(yaml.dump(value, Dumper=SafeDumper))


def _key(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _nonfinite(node, path=()):
    if isinstance(node, float) and not math.isfinite(node):
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _nonfinite(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _nonfinite(v, path + (i,))


def validate(config: dict, schema_path) -> dict:
    """Validate ``config`` in place (filling defaults) and return it."""
    where = "config/config.yaml (or the --config / --configfile you passed)"
    if not isinstance(config, dict):
        raise ConfigError(f"the configuration must be a mapping of keys to values; fix {where}")
    with open(schema_path) as fh:
        schema = with_registries(safe_load(fh))
    _coerce_numbers(config, schema, schema)
    for path, value in _nonfinite(config):
        raise ConfigError(f"config key '{_key(path)}': {value} is not a finite number; fix {where}")
    validator = _with_defaults(_strict_integers(jsonschema.Draft7Validator))(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        raise ConfigError(f"config key '{_key(list(errors[0].path))}': {_message(errors[0])}; "
                          f"fix {where}")
    d = config.get("data", {})
    if d.get("x_min", 0) >= d.get("x_max", 1):
        raise ConfigError(f"config key 'data.x_min': must be below data.x_max; fix {where}")
    resolved = _check_variants(config, schema, validator, where)
    for key, msg in _cross_checks(config, resolved):
        raise ConfigError(f"config key '{key}': {msg}; fix {where}")
    # Canonical key order, so that a job's params do not change when only the order of keys
    # in a config file does (Snakemake compares params as written).
    canonical = _sorted(config)
    config.clear()
    config.update(canonical)
    return config


def _message(err) -> str:
    """A schema error in words, with the fix where the schema's own message lacks it."""
    if err.validator == "additionalProperties":
        known = sorted(err.schema.get("properties", {}))
        return f"{err.message}; known keys here: {', '.join(known)}"
    if err.validator == "uniqueItems" and isinstance(err.instance, list):
        seen = set()
        dup = next((v for v in err.instance if repr(v) in seen or seen.add(repr(v))), None)
        return (f"{dup!r} is listed more than once ({len(err.instance)} items, non-unique): "
                "list each once")
    if err.validator == "required":
        return f"{err.message} (a required section or key is missing)"
    if err.validator == "contains" and isinstance(err.validator_value, dict) \
            and "const" in err.validator_value:
        return f"{err.instance!r} lacks {err.validator_value['const']!r}, which it must list"
    if err.validator == "type" and err.validator_value == "integer" \
            and isinstance(err.instance, float):
        return (f"{err.instance!r} is not of type 'integer': write a whole number without a "
                f"decimal point or exponent" + (f" ({int(err.instance)})"
                                                if err.instance.is_integer() else ""))
    return err.message


def _section_schema(schema: dict, experiment: str) -> dict:
    sub = schema["properties"][experiment]
    if "$ref" in sub:
        sub = schema["definitions"][sub["$ref"].rsplit("/", 1)[1]]
    return sub


def _check_variants(config: dict, schema: dict, validator, where: str):
    """Expand the grids and validate every variant exactly like its experiment: its overrides
    on top of the experiment's (and the data) section, against the same schema. Returns the
    study's experiments and the variants, resolved (actflow.variants.resolve)."""
    from . import variants

    try:
        expanded = variants.expand_entries(config.get("variants"))
    except variants.VariantError as err:
        raise ConfigError(f"config key '{err.key}': {err.message}; fix {where}") from None
    for v in expanded:
        label = f"variants[{v['index']}] ({v['name']})"
        ov = dict(v["overrides"])
        data_ov = ov.pop("data", {})
        section = _section_schema(schema, v["of"])
        for key in ov:
            if key not in section["properties"]:
                raise ConfigError(
                    f"config key '{label}.{key}': not a setting of {v['of']}; its settings are "
                    f"{', '.join(sorted(section['properties']))} and data: {{...}}; fix {where}")
        if not isinstance(data_ov, dict):
            raise ConfigError(f"config key '{label}.data': must be a mapping of data settings; "
                              f"fix {where}")
        for key in data_ov:
            if key not in schema["properties"]["data"]["properties"]:
                raise ConfigError(
                    f"config key '{label}.data.{key}': not a data setting; they are "
                    f"{', '.join(sorted(schema['properties']['data']['properties']))}; fix {where}")
        probe = {v["of"]: _copy(config[v["of"]]) | ov, "data": _copy(config["data"]) | data_ov}
        sub = {"type": "object", "properties": {v["of"]: section,
                                                "data": schema["properties"]["data"]},
               "definitions": schema.get("definitions", {})}
        errors = sorted(validator.evolve(schema=sub).iter_errors(probe),
                        key=lambda e: (len(e.path), list(map(str, e.path))))
        if errors:
            err = errors[0]
            path = list(err.path)
            key = ".".join(map(str, path[1:])) if path[0] == v["of"] else _key(path)
            raise ConfigError(f"config key '{label}.{key}': {_message(err)}; fix {where}")
        d = probe["data"]
        if d["x_min"] >= d["x_max"]:
            raise ConfigError(f"config key '{label}.data.x_min': must be below data.x_max; "
                              f"fix {where}")
    return variants.resolve(config, expanded)


def _cross_checks(config: dict, resolved):
    """What the schema cannot say: relations between keys, and whether each job fits in memory,
    for the study's experiments and every variant. Yields (key, message) for each problem, the
    first of which is reported."""
    from . import budget

    shown = config["neurons"]["show_layers"]
    mem = config["train"]["mem_mb"]
    for v in resolved:
        key = v.name if v.is_study else f"variants[{v.entry}] ({v.name})"
        c, n = v.settings, v.data["n_samples"]
        if v.kind == "sine":
            deeper = [layer for layer in shown if layer > c["hidden_layers"]]
            if deeper:
                yield ("neurons.show_layers", f"layer {deeper[0]} is deeper than "
                       f"{key}.hidden_layers = {c['hidden_layers']}: list layers between 1 and "
                       f"{c['hidden_layers']}")
        stacked = v.stacked_runs
        need = budget.training_mb(stacked, c["hidden_layers"], c["width"], n, c["epochs"])
        if need > mem:
            yield (key, f"one training job would need about {need:,.0f} MB ({stacked} stacked runs × "
                   f"{c['hidden_layers']} layers × width {c['width']} × {n} samples × "
                   f"{c['epochs']} epochs) but train.mem_mb is {mem:,}: lower the epochs, width, "
                   f"layers, samples or seeds, or raise train.mem_mb to what a job may use")
        if v.kind == "sine":
            need = budget.weight_metrics_mb(len(v.seeds), c["hidden_layers"], c["width"], n, len(shown))
            what = "weight-metrics job"
        else:
            need = budget.capacity_mb(len(v.seeds), len(c["targets"]), len(config["activations"]),
                                      c["n_test"], c["hidden_layers"], c["width"])
            what = "capacity-metrics job"
        if need > mem:
            yield (key, f"its {what} would need about {need:,.0f} MB but train.mem_mb is "
                   f"{mem:,}: lower the sizes or raise train.mem_mb")


def with_registries(schema: dict) -> dict:
    """The schema with the allowed activation and target names and figure formats taken from
    the registries (actflow.activations.REGISTRY, actflow.data.TARGETS,
    actflow.layout.FIGURE_FORMATS): the one list of each."""
    from .activations import REGISTRY
    from .data import TARGETS
    from .layout import FIGURE_FORMATS

    props = schema["properties"]
    props["activations"]["items"]["enum"] = list(REGISTRY)
    props["exp3"]["properties"]["targets"]["items"]["enum"] = list(TARGETS)
    props["figures"]["properties"]["formats"]["items"]["enum"] = list(FIGURE_FORMATS)
    return schema


MERGE_TAG = "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *anchor`: keys merged in, which the mapping's
                continue  # own keys may override (YAML's merge keys; SafeLoader expands them)
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(
                    f"the key {key!r} appears twice in one mapping (lines {seen[key] + 1} and "
                    f"{key_node.start_mark.line + 1}); YAML would keep the last one silently: "
                    f"delete one")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def load_yaml(path):
    """Load a YAML file, refusing duplicate keys; errors name the file."""
    try:
        with open(path) as fh:
            return yaml.load(fh, Loader=_UniqueKeyLoader)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def _coerce_numbers(node, schema: dict, root: dict):
    """Numbers given as text (``--config "exp1={learning_rate: 1e-2}"`` arrives as strings) become
    numbers, except where the schema says the key is text (a variant's question '2024' stays
    the text 2024); anything else is left for the schema to judge."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in list(items):
        sub = _child_schema(schema, key, root)
        if isinstance(value, str):
            if _is_text(sub):
                continue
            for kind in (int, float):
                try:
                    node[key] = kind(value)
                    break
                except ValueError:
                    pass
        else:
            _coerce_numbers(value, sub, root)


def _resolved(schema, root: dict) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = root.get("definitions", {}).get(schema["$ref"].rsplit("/", 1)[1], {})
    return schema if isinstance(schema, dict) else {}


def _child_schema(schema: dict, key, root: dict) -> dict:
    """The schema of ``key`` (a mapping key or a list index) under ``schema``; {} if unknown."""
    s = _resolved(schema, root)
    if isinstance(key, int):
        return _resolved(s.get("items", {}), root)
    if key in s.get("properties", {}):
        return _resolved(s["properties"][key], root)
    extra = s.get("additionalProperties")
    return _resolved(extra, root) if isinstance(extra, dict) else {}


def _is_text(schema: dict) -> bool:
    kinds = schema.get("type")
    kinds = set(kinds if isinstance(kinds, list) else [kinds] if kinds else [])
    return bool(kinds) and not kinds & {"number", "integer"}


def _sorted(node):
    if isinstance(node, dict):
        return {k: _sorted(node[k]) for k in sorted(node)}
    if isinstance(node, list):
        return [_sorted(v) for v in node]
    return node
