"""The merged public API document."""

from __future__ import annotations

from gateway.domain.openapi import merge_public_api


def json_of(schema: str) -> dict:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


GATEWAY = {"openapi": "3.1.0", "paths": {"/api/v1/auth/me": {"get": {"responses": {}}}}, "components": {}}

AUDIENCE = {
    "paths": {
        "/api/v1/lists": {
            "post": {
                "parameters": [
                    {"name": "X-Mailstify-Account", "in": "header"},
                    {"name": "x-mailstify-internal-token", "in": "header"},
                ],
                "requestBody": json_of("ListCreate"),
                "responses": {"201": json_of("Page")},
            }
        },
        "/api/v1/lists/{list_id}": {"get": {"parameters": [{"name": "list_id", "in": "path"}], "responses": {}}},
        "/internal/lists/{list_id}/recipients": {
            "get": {"responses": {"200": json_of("Secret")}}
        },
        "/healthz": {"get": {"responses": {}}},
    },
    "components": {
        "schemas": {
            "ListCreate": {"type": "object"},
            "Page": {"properties": {"items": {"items": {"$ref": "#/components/schemas/ListOut"}}}},
            "ListOut": {"type": "object"},
            "Secret": {"type": "object"},
        }
    },
}


def test_only_the_services_public_routes_and_their_schemas_are_added() -> None:
    merged = merge_public_api(GATEWAY, {"audience": AUDIENCE})
    assert set(merged["paths"]) == {"/api/v1/auth/me", "/api/v1/lists", "/api/v1/lists/{list_id}"}
    assert set(merged["components"]["schemas"]) == {"ListCreate", "Page", "ListOut"}


def test_headers_the_gateway_adds_are_not_asked_of_callers() -> None:
    merged = merge_public_api(GATEWAY, {"audience": AUDIENCE})
    assert "parameters" not in merged["paths"]["/api/v1/lists"]["post"]
    assert merged["paths"]["/api/v1/lists/{list_id}"]["get"]["parameters"] == [{"name": "list_id", "in": "path"}]
    assert AUDIENCE["paths"]["/api/v1/lists"]["post"]["parameters"]  # the input is left untouched


def test_the_gateways_authentication_is_declared() -> None:
    merged = merge_public_api(GATEWAY, {})
    assert set(merged["components"]["securitySchemes"]) == {"apiKey", "session"}
    assert merged["security"] == [{"apiKey": []}, {"session": []}]
    assert "securitySchemes" not in GATEWAY["components"]
