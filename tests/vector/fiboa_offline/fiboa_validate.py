"""Validate fiboa files offline: `python fiboa_validate.py FILE [fiboa validate options]`.

fiboa-cli (PyPI) fetches the GeoParquet, Vecorel, SDL and fiboa schemas over the internet at every run.
This wrapper serves them from the copies beside it (fiboa-schemas/), then runs `fiboa validate`.
Needs fiboa-cli installed in the running Python. A copy of the project's shared tool kept in the repository
so that tests/vector/test_fiboa.py runs on a fresh clone (CI) as well.
"""

import json
import sys
from pathlib import Path

import referencing
import referencing.jsonschema
import yaml
from vecorel_cli.validate_schema import ValidateSchema
from vecorel_cli.vecorel import util

HERE = Path(__file__).resolve().parent / "fiboa-schemas"
LOCAL = {
    "https://geoparquet.org/releases/v1.1.0/schema.json": "geoparquet-1.1.0.schema.json",
    "https://vecorel.org/sdl/v0.2.0/schema.json": "sdl-0.2.0.schema.json",
    "https://vecorel.org/specification/v0.1.0/schema.yaml": "vecorel-schema.yaml",
    "https://fiboa.org/specification/v0.3.0/schema.yaml": "fiboa-schema.yaml",
    "https://proj.org/schemas/v0.7/projjson.schema.json": "projjson-0.7.schema.json",
    # magseg's own extension (magseg:confidence), shipped in the package
    "https://magseg.org/extensions/magseg/v0.1.0/schema.yaml": str(
        Path(__file__).resolve().parents[3] / "magseg" / "vector" / "schemas" / "magseg-v0.1.0.yaml"
    ),
}


def _load(name: str):
    text = (HERE / name).read_text()
    return yaml.safe_load(text) if name.endswith(".yaml") else json.loads(text)


for url, name in LOCAL.items():
    util.file_cache[url] = _load(name)

_remote = ValidateSchema.retrieve_remote_schema


def _retrieve(uri: str):
    if uri in LOCAL:
        return referencing.Resource.from_contents(
            _load(LOCAL[uri]), default_specification=referencing.jsonschema.DRAFT202012
        )
    return _remote(uri)


ValidateSchema.retrieve_remote_schema = staticmethod(_retrieve)

sys.argv = ["fiboa", "validate", *sys.argv[1:]]
import fiboa_cli  # noqa: E402,F401  (registers fiboa's schemas and commands)
from fiboa_cli.cli import setup  # noqa: E402,F401  (runs the command line on import)
