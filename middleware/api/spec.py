"""What each view declares about itself, for the OpenAPI description.

Views say which schemas load their input and dump their answers with ``@describe``; the OpenAPI
generator reads these declarations, so the description comes from the same schemas that validate.
"""

from __future__ import annotations


def describe(
    *,
    tags: list[str],
    summary: str | None = None,
    query=None,
    body=None,
    path_params: dict[str, str] | None = None,
    responses: dict | None = None,
    problems: tuple[int, ...] = (),
    content_type: str = "application/json",
    text_form: bool = False,
):
    """Attach the view's API description.

    ``query`` and ``body`` are schema classes; ``responses`` maps a status to a schema class (or
    None for no body, or a media-type string such as "text/html"); ``problems`` lists the error
    statuses the view may answer with a problem body. ``text_form``: the view also answers in
    plain text (the caller lookup for a PBX): its 200 as text/plain, every problem as an empty
    text/plain body.
    """

    def decorate(view):
        view.cti_doc = {
            "tags": tags,
            "summary": summary,
            "query": query,
            "body": body,
            "path_params": path_params or {},
            "responses": responses or {},
            "problems": problems,
            "content_type": content_type,
            "text_form": text_form,
        }
        return view

    return decorate
