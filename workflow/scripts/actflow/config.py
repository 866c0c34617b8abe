"""Validation of the workflow configuration, before any job runs.

JSON Schema (``workflow/schemas/config.schema.yaml``) checks types, ranges and
unknown keys and fills defaults; the allowed names of activations and targets are
taken from the registries (:func:`with_registries`), not written in the schema.
The checks below add what a schema cannot say: non-finite numbers, ranges.
Every failure raises :class:`ConfigError` with one message naming the key,
the reason and the fix.
"""

from __future__ import annotations

import math

import jsonschema
import yaml


class ConfigError(ValueError):
    pass


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
    return yaml.safe_load(yaml.safe_dump(value))


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
    _coerce_numbers(config)
    for path, value in _nonfinite(config):
        raise ConfigError(f"config key '{_key(path)}': {value} is not a finite number; fix {where}")
    with open(schema_path) as fh:
        schema = with_registries(yaml.safe_load(fh))
    validator = _with_defaults(jsonschema.Draft7Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        err = errors[0]
        path = list(err.path)
        if err.validator == "additionalProperties":
            known = sorted(err.schema.get("properties", {}))
            msg = f"{err.message}; known keys here: {', '.join(known)}"
        elif err.validator == "required":
            msg = f"{err.message} (a required section or key is missing)"
        else:
            msg = err.message
        raise ConfigError(f"config key '{_key(path)}': {msg}; fix {where}")
    d = config.get("data", {})
    if d.get("x_min", 0) >= d.get("x_max", 1):
        raise ConfigError(f"config key 'data.x_min': must be below data.x_max; fix {where}")
    # Canonical key order, so that a job's params do not change when only the order of keys
    # in a config file does (Snakemake compares params as written).
    canonical = _sorted(config)
    config.clear()
    config.update(canonical)
    return config


def with_registries(schema: dict) -> dict:
    """The schema with the allowed activation and target names taken from the registries
    (actflow.activations.REGISTRY, actflow.data.TARGETS): the one list of each."""
    from .activations import REGISTRY
    from .data import TARGETS

    props = schema["properties"]
    props["activations"]["items"]["enum"] = list(REGISTRY)
    props["exp3"]["properties"]["targets"]["items"]["enum"] = list(TARGETS)
    return schema


def _coerce_numbers(node):
    """Numbers given as text (``--config "exp1={learning_rate: 1e-2}"`` arrives as strings) become
    numbers; anything else is left for the schema to judge."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in list(items):
        if isinstance(value, str):
            for kind in (int, float):
                try:
                    node[key] = kind(value)
                    break
                except ValueError:
                    pass
        else:
            _coerce_numbers(value)


def _sorted(node):
    if isinstance(node, dict):
        return {k: _sorted(node[k]) for k in sorted(node)}
    if isinstance(node, list):
        return [_sorted(v) for v in node]
    return node
