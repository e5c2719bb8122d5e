"""GET /api/v1/openapi.json: OpenAPI 3, generated from the schemas, covering every route."""

from __future__ import annotations

from openapi_spec_validator import validate

from middleware.api.openapi import _PATH_PARAMETER, IGNORED_METHODS, undocumented

from .conftest import API_KEY, TOKEN_SECRET, WEBHOOK_SECRET


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


# Every route of the URL map, asked with what its description says it reads, answers only what
# its description says it answers (status and media type).
WALK_ENV = {
    "CTI_DIALER": "sandbox",
    "CTI_CRM": "sandbox",
    "CTI_AGENT_PROVIDER": "sandbox",
    "CTI_TOKEN_SECRET": TOKEN_SECRET,
}
PATH_SAMPLES = {
    "extension": "6000",
    "call_id": "call-1",
    "lead_id": "lead-1",
    "day": "2025-12-25",
    "entry_id": "1",
    "callback_id": "1",
    "phone": "%2B27721234567",
}
QUERY_SAMPLES = {  # beside the empty query every route is asked with
    "/api/v1/contacts/lookup": ["phone=%2B27721234567", "phone=%2B27721234567&format=text"],
    "/pop": ["phone=%2B27721234567"],
    "/api/v1/contacts/search": ["term=james"],
}
BODY_SAMPLE = {"event": ""}  # a form or JSON object with one field: read, then judged


def _requests(rule, method: str, operation: dict):
    """(query, request kwargs, media type sent) for each way this operation is declared to read."""
    queries = ["", *QUERY_SAMPLES.get(rule.rule, [])]
    bodies = [(None, {})]
    for media in operation.get("requestBody", {}).get("content", {}):
        if media == "application/json":
            bodies.append((media, {"json": BODY_SAMPLE}))
        else:
            bodies.append((media, {"data": dict(BODY_SAMPLE), "content_type": media}))
    for query in queries:
        for media, kwargs in bodies:
            yield query, kwargs, media


def _declared_answer_problems(response, method: str, path: str, operation: dict) -> list[str]:
    where = f"{method} {path} -> {response.status_code} {response.mimetype}"
    declared = operation["responses"].get(str(response.status_code))
    if declared is None:
        return [f"{where}: status not declared ({sorted(operation['responses'])})"]
    content = declared.get("content", {})
    if not content:
        if response.status_code < 300 or response.status_code >= 400:
            if response.get_data():
                return [f"{where}: declared without a body, answered one"]
        return []
    if response.mimetype not in content:
        return [f"{where}: media type not declared ({sorted(content)})"]
    return []


def test_every_route_reads_and_answers_the_media_types_its_description_declares(make_app, upstream):
    app = make_app(**WALK_ENV)
    client = app.test_client()
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    headers = {"X-API-Key": API_KEY, "X-Webhook-Token": WEBHOOK_SECRET}
    problems, walked = [], 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        template = _PATH_PARAMETER.sub(r"{\1}", rule.rule)
        url = _PATH_PARAMETER.sub(lambda m: PATH_SAMPLES[m.group(1)], rule.rule)
        for method in sorted(rule.methods - IGNORED_METHODS):
            operation = paths[template][method.lower()]
            for query, kwargs, media in _requests(rule, method, operation):
                target = f"{url}?{query}" if query else url
                response = client.open(target, method=method, headers=headers, **kwargs)
                try:
                    walked += 1
                    problems += _declared_answer_problems(response, method, target, operation)
                    if media is not None and response.mimetype == "application/problem+json":
                        # A body in a declared media type is read: judged field by field, never
                        # refused as unreadable.
                        errors = response.get_json().get("errors") or {}
                        if "_body" in errors:
                            problems.append(f"{method} {target} ({media}): body not read")
                finally:
                    response.close()
    assert walked > 40
    assert not problems, "\n".join(problems)
