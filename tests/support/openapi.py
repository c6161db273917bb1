"""OpenAPI 3.1 documents for the schemathesis tests of the server's routes and the viewer's:
one operation per route (path parameters, a JSON body model, the ``{"error": ...}`` envelope
for every error status, open or Bearer-protected), and the document around them."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

from pydantic.json_schema import models_json_schema

ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"],
                "additionalProperties": False}


def operation(method: str, path: str, success: int, error_codes: Sequence[int], *, open_route: bool = False,
              body_model: Optional[type] = None) -> Dict[str, Any]:
    """One operation; ``open_route`` needs no key. Callers may add query parameters or other bodies."""
    result: Dict[str, Any] = {
        "operationId": f"{method}_{path}",
        "responses": {str(success): {"description": "success"},
                      **{str(code): {"description": "error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}
                         for code in error_codes}},
    }
    if open_route:
        result["security"] = []
    parameters = [{"name": name.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in path.split("/") if name.startswith("{")]
    if parameters:
        result["parameters"] = parameters
    if body_model is not None:
        result["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{body_model.__name__}"}}}}
    return result


def document(title: str, operations: Iterable[Tuple[str, str, Dict[str, Any]]], body_models: Iterable[type]) -> dict:
    """The document for ``(path, method, operation)`` triples, with the body models' schemas and
    Bearer authentication by default."""
    models = sorted(set(body_models), key=lambda model: model.__name__)
    _, definitions = models_json_schema([(m, "validation") for m in models], by_alias=True,
                                        ref_template="#/components/schemas/{model}")
    paths: Dict[str, Dict[str, Any]] = {}
    for path, method, op in operations:
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0", "info": {"title": title, "version": "1"}, "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
