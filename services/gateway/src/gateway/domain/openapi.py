"""One OpenAPI document for the whole public API: the gateway's own routes plus the public routes
of the services behind it, as those services describe themselves.

The services' documents include the headers the gateway adds (internal token, account); a public
caller never sends those, so they are removed, and the gateway's ways to authenticate are declared.
"""

from __future__ import annotations

import copy
from typing import Any

from .routing import API_PREFIX

INTERNAL_HEADERS = frozenset({"x-mailstify-account", "x-mailstify-internal-token"})

SECURITY_SCHEMES = {
    "apiKey": {"type": "http", "scheme": "bearer", "description": "an API key, `msk_...`"},
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "mailstify_session",
        "description": "browser session; state changes also need the X-CSRF-Token header",
    },
}


def _public_operation(operation: dict[str, Any]) -> dict[str, Any]:
    operation = copy.deepcopy(operation)
    parameters = [
        parameter
        for parameter in operation.get("parameters", [])
        if not (parameter.get("in") == "header" and parameter.get("name", "").lower() in INTERNAL_HEADERS)
    ]
    if parameters:
        operation["parameters"] = parameters
    else:
        operation.pop("parameters", None)
    return operation


SCHEMA_REF_PREFIX = "#/components/schemas/"


def _schema_refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        ref = str(node.get("$ref", ""))
        found = {ref[len(SCHEMA_REF_PREFIX) :]} if ref.startswith(SCHEMA_REF_PREFIX) else set()
        return found.union(*(_schema_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_schema_refs(value) for value in node))
    return set()


def _schemas_used(roots: Any, available: dict[str, Any]) -> dict[str, Any]:
    """The schemas `roots` refer to, directly or through other schemas (internal routes' stay out)."""
    used: dict[str, Any] = {}
    pending = _schema_refs(roots)
    while pending:
        name = pending.pop()
        if name in used or name not in available:
            continue
        used[name] = available[name]
        pending |= _schema_refs(available[name])
    return used


def merge_public_api(gateway: dict[str, Any], services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The gateway's document with each service's `/api/v1/` paths and their schemas added."""
    merged = copy.deepcopy(gateway)
    paths = merged.setdefault("paths", {})
    components = merged.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for document in services.values():
        added: dict[str, Any] = {}
        for path, operations in document.get("paths", {}).items():
            if not path.startswith(API_PREFIX) or path in paths:
                continue
            added[path] = {
                method: _public_operation(operation) if isinstance(operation, dict) else operation
                for method, operation in operations.items()
            }
        paths.update(added)
        available = document.get("components", {}).get("schemas", {})
        for name, schema in _schemas_used(added, available).items():
            schemas.setdefault(name, schema)  # shared names (validation errors, pages) are the same shape
    components["securitySchemes"] = SECURITY_SCHEMES
    merged["security"] = [{"apiKey": []}, {"session": []}]
    return merged
