"""The OpenAPI 3 description, generated from the app's routes and each view's ``@describe``.

Nothing here is written by hand per endpoint: paths, methods and path parameters come from the URL
map, query parameters, bodies and answers from the marshmallow schemas the views validate with
(apispec's MarshmallowPlugin), errors from the one problem schema, and security from the view's
auth kind and, on a protected view, the credential kinds its ``@allow`` admits. A view without a
declaration is left out and named in ``undocumented``, which the tests require to be empty.

The problem answers of an operation, each status with its codes, are derived from what the app
knows of it (``_derived_problems``), plus the few its ``@describe(problems=...)`` declares because
nothing else tells them (409, 501, ...). A blueprint with its own problem handler (the IVR's,
plain text) answers what its ``responses`` declare instead.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from werkzeug.routing import IntegerConverter, UUIDConverter
from werkzeug.routing.converters import AnyConverter, FloatConverter
from werkzeug.routing.rules import parse_converter_args

from schemas.fields import PhoneNumber
from schemas.problem import ProblemSchema

from ..auth import ANY_AGENT, API_KEY, PUBLIC, WEBHOOK, Access, access_of
from ..errors import (
    PROBLEM_JSON,
    Forbidden,
    InvalidNumber,
    NotFound,
    PayloadTooLarge,
    Problem,
    Unauthorized,
    ValidationFailed,
)
from ..lookup.display import MAX_CHARS
from ..lookup.text_form import LOOKUP_PATH

log = logging.getLogger(__name__)

TITLE = "CTI middleware"
VERSION = "1"
IGNORED_METHODS = {"HEAD", "OPTIONS"}
CREDENTIAL_PARAMETERS = ("api_key", "token")  # described by the security schemes instead
_PATH_PARAMETER = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")
# A rule's variable as werkzeug writes it: <name>, <converter:name> or <converter(args):name>.
_VARIABLE = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<args>.*?)\))?:)?(?P<name>\w+)>")

SECURITY_SCHEMES = {
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "ApiKeyBearer": {"type": "http", "scheme": "bearer"},
    "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
    "WebhookToken": {"type": "apiKey", "in": "header", "name": "X-Webhook-Token"},
    "WebhookTokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
}
SECURITY = {
    API_KEY: [{"ApiKeyHeader": []}, {"ApiKeyBearer": []}, {"ApiKeyQuery": []}],
    WEBHOOK: [{"WebhookToken": []}, {"WebhookTokenQuery": []}],
    PUBLIC: [],
}


def openapi_document(app: Flask) -> dict:
    """The description of ``app``, built on first use and kept (routes do not change at run time)."""
    cached = app.extensions.get("cti_openapi")
    if cached is None:
        cached = app.extensions["cti_openapi"] = build(app)
    return cached["document"]


def undocumented(app: Flask) -> list[str]:
    """Endpoints whose view carries no ``@describe``: missing from the description."""
    openapi_document(app)
    return app.extensions["cti_openapi"]["undocumented"]


def build(app: Flask) -> dict:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.0.3",
        plugins=[plugin],
        info={"description": "Joins a CRM to the call-center platforms its agents dial through."},
    )
    # A parsed phone number is written and read as a string.
    plugin.map_to_openapi_type(PhoneNumber, "string", None)
    spec.components.schema("Problem", schema=ProblemSchema)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)

    paths: dict[str, dict] = {}
    missing: list[str] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        doc = getattr(view, "cti_doc", None)
        if doc is None:
            missing.append(f"{rule.endpoint} ({rule.rule}): no @describe on its view")
            continue
        path = _PATH_PARAMETER.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            operation = _operation(app, rule, method, view, doc)
            paths.setdefault(path, {})[method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    if missing:
        log.warning("views missing from the OpenAPI description: %s", "; ".join(missing))
    return {"document": _ecma_patterns(spec.to_dict()), "undocumented": missing}


def _operation(app: Flask, rule, method: str, view, doc) -> dict:
    auth = getattr(view, "cti_auth", API_KEY)
    text = (view.__doc__ or "").strip()
    operation: dict = {
        "operationId": f"{rule.endpoint}.{method.lower()}",
        "tags": list(doc.tags),
        "summary": doc.summary or text.split("\n", 1)[0] or rule.endpoint,
        "security": SECURITY[auth],
        "responses": {},
    }
    if auth == API_KEY:
        # Every kind of credential travels the same three ways; who may call this is said here.
        access = access_of(view)
        operation["x-credentials"] = access.credentials()
        refused = " Anything else: 403." if _refuses_some(access) else ""
        text = f"{text}\n\nCredentials: {'; '.join(access.credentials())}.{refused}".strip()
    if text:
        operation["description"] = text
    parameters = _path_parameters(app, rule, doc)
    query = doc.body if doc.body is not None and doc.body_from.in_query else doc.query
    if query is not None:
        parameters.append({"in": "query", "schema": _without_credentials(query)})
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None and method in ("POST", "PUT", "PATCH"):
        # A body whose every field is optional (or may come in the query) may be left out.
        operation["requestBody"] = {
            "required": doc.body_required and not doc.body_from.in_query,
            "content": {media: {"schema": doc.body} for media in doc.body_from.media},
        }

    responses = operation["responses"]
    for status, answer in doc.responses.items():
        responses[str(status)] = _response(status, answer)
    for media in doc.also:
        responses[str(doc.status)].setdefault("content", {})[media] = {"schema": {"type": "string"}}
    if not _renders_own_problems(app, rule):
        for status, codes in sorted(_problems(app, rule, view, doc, auth).items()):
            responses.setdefault(
                str(status),
                {
                    "description": f"{HTTPStatus(status).phrase}: {', '.join(codes)}",
                    "content": {PROBLEM_JSON: {"schema": "Problem"}},
                },
            )
    if rule.rule == LOOKUP_PATH:  # errors.render answers a failure there in the text form too
        _add_text_form(responses)
    return operation


def _problems(app: Flask, rule, view, doc, auth: str) -> dict[int, list[str]]:
    """Each problem status of the operation with its codes: the derived ones, then the declared
    ones. Declaring one that is derived is refused: it would say twice what can drift apart."""
    derived = list(_derived_problems(app, rule, view, doc, auth))
    known = {problem.code for problem in derived}
    repeated = [problem.__name__ for problem in doc.problems if problem.code in known]
    if repeated:
        raise ValueError(
            f"{rule.endpoint}: @describe(problems=...) repeats what is derived: {repeated}"
        )
    by_status: dict[int, list[str]] = {}
    for problem in (*derived, *doc.problems):
        codes = by_status.setdefault(problem.status, [])
        if problem.code not in codes:
            codes.append(problem.code)
    return by_status


def _derived_problems(app: Flask, rule, view, doc, auth: str):
    """The problems an operation may answer, from its credential rule, its route, its schemas and
    what its blueprint reaches beyond the process (``app.extensions["cti_reaches"]``, filled from
    ``factory.BLUEPRINTS``)."""
    if auth != PUBLIC:
        yield Unauthorized
    if auth == API_KEY and _refuses_some(access_of(view)):
        yield Forbidden
    if rule.arguments:
        yield NotFound  # werkzeug's converter refuses the value, or the resource does not exist
    schemas = [schema for schema in (doc.path, doc.query, doc.body) if schema is not None]
    if schemas:
        yield ValidationFailed
    if any(_loads_a_number(schema) for schema in schemas):
        yield InvalidNumber  # common.load: a phone number field that does not parse
    if doc.body is not None and not doc.body_from.in_query:
        yield PayloadTooLarge
    yield from app.extensions.get("cti_reaches", {}).get(rule.endpoint.rpartition(".")[0], ())


def _refuses_some(access: Access) -> bool:
    """Whether a valid credential of some kind gets 403 here (everything but a full key may)."""
    return not (access.lookup and access.supervisor and access.agent == ANY_AGENT)


def _loads_a_number(schema_class) -> bool:
    return any(isinstance(field, PhoneNumber) for field in schema_class().fields.values())


def _renders_own_problems(app: Flask, rule) -> bool:
    """The endpoint's blueprint answers problems its own way (its ``responses`` say how)."""
    blueprint = rule.endpoint.rpartition(".")[0]
    return bool(blueprint) and Problem in app.error_handler_spec.get(blueprint, {}).get(None, {})


def _add_text_form(responses: dict) -> None:
    """The plain-text form: the 200 as text, every problem as an empty text body."""
    for status, response in responses.items():
        if "content" not in response:
            continue
        if status == "200":
            schema = {"type": "string", "maxLength": MAX_CHARS}
        else:
            schema = {"type": "string", "maxLength": 0}
        response["content"]["text/plain"] = {"schema": schema}


def _response(status: int, answer) -> dict:
    response: dict = {"description": HTTPStatus(status).phrase}
    if answer is None:
        return response
    if isinstance(answer, str):
        schema = {"type": "string"} if answer.startswith("text/") else {}
        response["content"] = {answer: {"schema": schema}}
    else:
        response["content"] = {"application/json": {"schema": answer}}
    return response


def _path_parameters(app: Flask, rule, doc) -> list[dict]:
    descriptions = doc.path_params
    parameters = []
    for variable in _VARIABLE.finditer(rule.rule):
        name = variable["name"]
        parameter = {
            "in": "path",
            "name": name,
            "required": True,
            "schema": _converter_schema(_converter(app, variable)),
        }
        if name in descriptions:
            parameter["description"] = descriptions[name]
        parameters.append(parameter)
    return parameters


def _converter(app: Flask, variable: re.Match):
    """The converter werkzeug makes for ``variable``, from the map's public ``converters``."""
    converter_class = app.url_map.converters[variable["converter"] or "default"]
    args, kwargs = parse_converter_args(variable["args"]) if variable["args"] else ((), {})
    return converter_class(app.url_map, *args, **kwargs)


def _converter_schema(converter) -> dict:
    if isinstance(converter, IntegerConverter):
        return {"type": "integer"}
    if isinstance(converter, FloatConverter):
        return {"type": "number"}
    if isinstance(converter, UUIDConverter):
        return {"type": "string", "format": "uuid"}
    if isinstance(converter, AnyConverter):
        return {"type": "string", "enum": sorted(converter.items)}
    # Werkzeug's default converter takes one path segment: no "/" and at least one character.
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


def _ecma_patterns(node):
    """Python-only regex anchors (``\\A``, ``\\Z``) in their ECMA-262 spelling, as OpenAPI wants."""
    if isinstance(node, dict):
        return {
            key: (
                value.replace(r"\A", "^").replace(r"\Z", "$")
                if key == "pattern" and isinstance(value, str)
                else _ecma_patterns(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_ecma_patterns(item) for item in node]
    return node


def _without_credentials(schema_class):
    """The query schema without ``api_key``/``token``: the security schemes describe those."""
    fields = schema_class().fields
    credentials = tuple(n for n in CREDENTIAL_PARAMETERS if n in fields)
    return schema_class(exclude=credentials) if credentials else schema_class
