"""One declaration per operation: the schemas that load its input, dump its answer and describe it.

``@describe(...)`` on a view states its operation once. At request time it loads the path
parameters (``path``), the query string (``query``) and the body (``body``, read as ``body_from``
says) through those schemas, refusing bad input as ``common.load`` does (``invalid_number``,
``validation_error``), and calls the view with what they loaded: the path fields by name,
``query=`` and ``body=``. The view returns data, ``(data, status)`` or ``(data, status, headers)``,
dumped by the schema ``responses`` gives for that status (the first status when none is given), or
a prepared ``Response`` (the lookup's hit path, HTML, text, streams), sent as it is.
``api/openapi.py`` reads the same declaration (``view.cti_doc``), so what is described is what
loads and dumps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app, request
from werkzeug.wrappers import Response

from schemas.fields import RegionSchema

from ..errors import Problem, ValidationFailed
from .common import json_body, load, parsed_json, query_args, raw_query_args

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
FORMS = frozenset((FORM, MULTIPART))


@dataclass(frozen=True)
class BodyFrom:
    """Where a body is read from: ``media`` (described) and ``read(optional)`` (the data).
    ``in_query``: its fields may come in the query string too (described there as well)."""

    media: tuple[str, ...]
    read: Callable[[bool], dict]
    in_query: bool = False


def _json(optional: bool) -> dict:
    """A JSON object; an empty body is ``{}`` when the schema requires no field."""
    if optional and not request.get_data(cache=True).strip():
        return {}
    return json_body()


def _form_or_json(optional: bool) -> dict:
    # ``request.form`` is read only for a form: for any other body it sets up the form parser
    # for nothing (about 3% of a JSON webhook's time under load).
    if request.mimetype in FORMS and request.form:
        return request.form.to_dict()
    data = parsed_json()
    if not isinstance(data, dict):
        raise ValidationFailed(
            "The body must be a JSON object or a form.", errors={"_body": ["Not an event."]}
        )
    return data


def _query_form_json(optional: bool) -> dict:
    """The query string's fields, then a form's or a JSON object's over them. A JSON body that is
    there but no JSON object is refused like any malformed body: its fields are not silently
    dropped while the query string's are taken."""
    data = request.args.to_dict()
    data.update(request.form.to_dict())
    if request.is_json and request.get_data(cache=True).strip():
        body = parsed_json()
        if not isinstance(body, dict):
            raise ValidationFailed(
                "The body must be a JSON object or a form.", errors={"_body": ["Not JSON."]}
            )
        data.update(body)
    return data


JSON_BODY = BodyFrom((JSON,), _json)
FORM_OR_JSON = BodyFrom((JSON, FORM, MULTIPART), _form_or_json)
QUERY_FORM_OR_JSON = BodyFrom((FORM, JSON), _query_form_json, in_query=True)


def required_fields(schema_class) -> bool:
    """Whether ``schema_class`` requires any field (a body that requires none may be left out)."""
    return any(field.required for field in schema_class().fields.values())


@dataclass(eq=False, kw_only=True)
class describe:  # noqa: N801 (used as a decorator, like a function)
    """The operation of a view (see the module docstring).

    ``path``, ``query`` and ``body`` are schema classes (a ``RegionSchema`` is made once per app,
    in its ``CTI_DEFAULT_REGION`` and with its agent directory); ``path_params`` describes path
    parameters no schema loads; ``responses`` maps a status to a schema class, None (no body) or a
    media type ("text/html").
    ``memo_query``: the memo that remembers the loaded query by its raw query string (the
    lookup's ``QueryMemo``, called with the loader; the schema must be pure).
    ``on_problem(problem)``: a response for a refused request instead of problem+json, or None.
    ``also``: other media types of the first answer (the view returns them as a ``Response``).

    ``problems``: the ``Problem`` classes the view's own work raises that nothing else tells, such
    as ``Conflict`` (409: the state of a resource), ``Unsupported`` (501: what the configured
    provider lacks), ``RateLimited``, ``Busy``. Every other problem answer is derived by
    ``api/openapi.py`` and must not be listed here (building the document refuses it): 401 and
    403 from the credential rule (``@allow``, ``public``, ``webhook``), 404 from the path's
    variables, 422 from the path, query and body schemas (``invalid_number`` where they load a
    phone number), 413 from a body read, and 502, 503, 504 from what the view's blueprint reaches
    (``factory.BLUEPRINTS``: an upstream, the store). The plain-text form of the caller lookup is
    derived from ``text_form.LOOKUP_PATH``, the path whose failures the lookup's blueprint
    answers as text (``errors.failures_as_text``).
    """

    tags: list[str]
    summary: str | None = None
    path: type | None = None
    query: type | None = None
    body: type | None = None
    body_from: BodyFrom = JSON_BODY
    path_params: dict[str, str] = field(default_factory=dict)
    responses: dict = field(default_factory=dict)
    problems: tuple[type[Problem], ...] = ()
    memo_query: Callable | None = None
    on_problem: Callable[[Problem], Response | None] | None = None
    also: tuple[str, ...] = ()

    def __post_init__(self):
        self.body_required = self.body is not None and required_fields(self.body)
        self.path_params = dict(self.path_params)
        if self.path is not None:
            for name, declared in self.path().fields.items():
                if "description" in declared.metadata:
                    self.path_params.setdefault(name, declared.metadata["description"])
        self.status = next(iter(self.responses), 200)  # of an answer returned without one
        self.answers = {
            status: answer()
            for status, answer in self.responses.items()
            if answer is not None and not isinstance(answer, str)
        }

    def __call__(self, view):
        operation = self

        @functools.wraps(view)
        def operate(**kwargs):
            if operation.on_problem is None:
                return operation.answer(view(**operation.loaded(kwargs)))
            try:
                return operation.answer(view(**operation.loaded(kwargs)))
            except Problem as problem:
                response = operation.on_problem(problem)
                if response is None:
                    raise
                return response

        operate.cti_doc = self
        return operate

    def loaded(self, kwargs: dict) -> dict:
        """The view's arguments: the path, query and body loaded by this app's schemas."""
        bound = self._bound()
        if bound.path is not None:
            kwargs = load(bound.path, kwargs)
        if bound.query is not None:
            kwargs["query"] = bound.query()
        if bound.body is not None:
            kwargs["body"] = load(bound.body, self.body_from.read(not self.body_required))
        return kwargs

    def answer(self, answer):
        if isinstance(answer, Response):
            return answer
        if isinstance(answer, tuple):
            data, status, *rest = answer
        else:
            data, status, rest = answer, self.status, ()
        schema = self.answers.get(status)
        if schema is None:  # no schema for this status (HTML, text): Flask makes the response
            return answer
        return (schema.dump(data), status, *rest)

    def dump(self, data, status: int | None = None) -> dict:
        """``data`` as the schema of ``status`` (the first declared one) writes it."""
        return self.answers[self.status if status is None else status].dump(data)

    def query_of(self, app, raw: bytes):
        """The query this raw query string loads to in ``app``, as a request's view gets it (held
        by ``memo_query``, else loaded by the same schema from the same arguments, then held);
        None when it does not load (the view's request loads it again and answers what that
        raises: a refusal, or anything else), or before a request of ``app`` has bound the
        operation. No request is needed: the arguments are read from ``raw`` as the request class
        reads ``request.args``."""
        bound = app.extensions.get("cti_operations", {}).get(self)
        if bound is None or bound.memo is None:
            return None
        try:
            return bound.memo(raw)
        except Exception:  # noqa: BLE001 - nothing was done: the normal path answers it
            return None

    def _bound(self) -> _Bound:
        bound_ops = current_app.extensions.setdefault("cti_operations", {})
        bound = bound_ops.get(self)
        if bound is None:
            bound = bound_ops[self] = _Bound(self, current_app.extensions["cti"])
        return bound


class _Bound:
    """An operation's request schemas in one app (its region and directory), and its query memo."""

    __slots__ = ("path", "query", "body", "memo")

    def __init__(self, operation: describe, services):
        def made(schema_class):
            if schema_class is None:
                return None
            if issubclass(schema_class, RegionSchema):
                return schema_class(
                    region=services.settings.default_region, directory=services.directory
                )
            return schema_class()

        self.path = made(operation.path)
        self.body = made(operation.body)
        query = made(operation.query)
        self.memo = None
        if query is None:
            self.query = None
        elif operation.memo_query:
            memo = self.memo = operation.memo_query(lambda raw: load(query, raw_query_args(raw)))
            self.query = functools.partial(_memo_query, memo)
        else:
            self.query = lambda: load(query, query_args())


def _memo_query(memo):
    """The loaded query, remembered by this request's raw query string (its arguments are read
    from the request, parsed as every other view gets them)."""
    return memo(request.query_string)
