"""Validates JSON documents against a schema of batch-runner/schemas (cross-file $refs resolved).

usage: validate_schema.py SCHEMA_DIR SCHEMA_NAME < documents.jsonl   (one JSON document per line)
Exit 1 with the first violation on stderr.
"""

import json
import pathlib
import sys

import jsonschema
from referencing import Registry, Resource

schema_dir = pathlib.Path(sys.argv[1])
registry = Registry()
for path in schema_dir.glob("*.json"):
    schema = json.loads(path.read_text())
    resource = Resource.from_contents(schema)
    registry = registry.with_resource(schema["$id"], resource)
    registry = registry.with_resource(path.name, resource)

main = json.loads((schema_dir / sys.argv[2]).read_text())
jsonschema.Draft202012Validator.check_schema(main)
validator = jsonschema.Draft202012Validator(main, registry=registry)
for n, line in enumerate(sys.stdin):
    if not line.strip():
        continue
    errors = sorted(validator.iter_errors(json.loads(line)), key=lambda e: e.path)
    if errors:
        e = errors[0]
        print(f"{sys.argv[2]}: document {n}: {list(e.path)}: {e.message}", file=sys.stderr)
        sys.exit(1)
