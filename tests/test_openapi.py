"""GET /api/v1/openapi.json: OpenAPI 3, generated from the schemas, covering every route."""

from __future__ import annotations

from openapi_spec_validator import validate

from middleware.api.openapi import _PATH_PARAMETER, IGNORED_METHODS, undocumented


def _document(client):
    answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    return answer.get_json()


def test_openapi_json_is_a_valid_openapi_3_document_without_a_key(client):
    document = _document(client)
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_route_of_the_app_appears_with_each_of_its_methods(app, client):
    missing = undocumented(app)
    assert not missing, (
        "views without @describe(...) (middleware/api/spec.py) are missing from openapi.json: "
        + "; ".join(missing)
    )
    paths = _document(client)["paths"]
    absent = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _PATH_PARAMETER.sub(r"{\1}", rule.rule)
        for method in sorted(rule.methods - IGNORED_METHODS):
            if method.lower() not in paths.get(path, {}):
                absent.append(f"{method} {path} ({rule.endpoint})")
    assert not absent, f"routes missing from openapi.json: {absent}"


def test_openapi_bodies_and_answers_come_from_the_marshmallow_schemas(client):
    document = _document(client)
    schemas = document["components"]["schemas"]
    operation = document["paths"]["/api/v1/calls"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/CallCreate"}
    create = schemas["CallCreate"]
    assert create["properties"]["to"]["type"] == "string"  # PhoneNumber is a string
    assert set(create["required"]) == {"to", "agent"}
    answer = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/Call"}
    assert set(schemas["Call"]["required"]) >= {"call_id", "status", "to", "dialed", "agent"}


def test_openapi_describes_problem_answers_as_problem_json(client):
    document = _document(client)
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    responses = document["paths"]["/api/v1/calls"]["post"]["responses"]
    for status in ("401", "422", "429", "502", "503", "504"):
        content = responses[status]["content"]
        assert content == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }


def test_openapi_query_parameters_come_from_the_query_schema(client):
    operation = _document(client)["paths"]["/click-to-call"]["get"]
    query = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert {"to", "agent", "lead_id", "caller_id"} <= set(query)
    assert query["to"]["required"] is True
    assert "api_key" not in query  # described by the security scheme


def test_openapi_security_follows_each_views_auth_kind(client):
    document = _document(client)
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["ApiKeyBearer"] == {"type": "http", "scheme": "bearer"}
    assert schemes["ApiKeyQuery"] == {"type": "apiKey", "in": "query", "name": "api_key"}
    assert schemes["WebhookToken"] == {"type": "apiKey", "in": "header", "name": "X-Webhook-Token"}
    assert schemes["WebhookTokenQuery"] == {"type": "apiKey", "in": "query", "name": "token"}
    paths = document["paths"]
    assert paths["/api/v1/calls"]["post"]["security"] == [
        {"ApiKeyHeader": []},
        {"ApiKeyBearer": []},
        {"ApiKeyQuery": []},
    ]
    for public in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"):
        assert paths[public]["get"]["security"] == []
    webhooks = [op for path, ops in paths.items() if "/webhooks/" in path for op in ops.values()]
    for operation in webhooks:
        assert operation["security"] == [{"WebhookToken": []}, {"WebhookTokenQuery": []}]


def test_openapi_path_parameters_use_openapi_braces(client):
    for path, operations in _document(client)["paths"].items():
        assert "<" not in path, path
        names = {p for p in _PATH_PARAMETER.findall(path)}
        assert not names
        for operation in operations.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            wanted = set(__import__("re").findall(r"\{([^}]+)\}", path))
            assert declared == wanted, path
