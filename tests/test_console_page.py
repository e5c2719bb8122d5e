"""``GET /console``, the supervisor's page (contract section 4): served without a key (it holds no
data), its script, style and charting library served from this origin, no inline script or style
(the pages' Content-Security-Policy allows neither), and every file it needs shipped in the
package."""

from __future__ import annotations

import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "middleware"
CHART_JS = "/static/vendor/chartjs/chart.umd.min.js"
CHART_JS_VERSION = "4.6.1"


class PageParts(HTMLParser):
    """The page's scripts, stylesheets, inline code and inline handlers."""

    def __init__(self):
        super().__init__()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.inline: list[str] = []  # what a CSP without 'unsafe-inline' would refuse
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in attributes:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            self._in_script = True
            if "src" in attributes:
                self.scripts.append(attributes["src"])
            else:
                self.inline.append("<script> without src")
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes["href"])
        if tag == "a" and (attributes.get("href") or "").lower().startswith("javascript:"):
            self.inline.append("javascript: link")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append("script body")


def parts(html: str) -> PageParts:
    parser = PageParts()
    parser.feed(html)
    return parser


def test_console_is_served_without_a_key_and_holds_no_inline_code(client):
    response = client.get("/console")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = parts(response.get_data(as_text=True))
    assert page.scripts == [CHART_JS, "/static/console.js"]  # the library before the page's code
    assert page.stylesheets == ["/static/console.css"]
    assert page.inline == []


def test_console_script_style_and_chart_library_are_served_with_their_types(client):
    for path, mimetypes in (
        ("/static/console.js", {"text/javascript", "application/javascript"}),
        ("/static/console.css", {"text/css"}),
        (CHART_JS, {"text/javascript", "application/javascript"}),
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.mimetype in mimetypes, path
        assert len(response.data) > 1000, path
        response.close()


def test_the_vendored_chart_library_is_the_recorded_version_with_its_licence():
    folder = PACKAGE / "static" / "vendor" / "chartjs"
    banner = (folder / "chart.umd.min.js").read_text()[:200]

    assert f"Chart.js v{CHART_JS_VERSION}" in banner
    assert "Released under the MIT License" in banner
    assert (folder / "LICENSE.md").read_text().startswith("The MIT License (MIT)")
    assert f"Chart.js {CHART_JS_VERSION}" in (folder / "README.md").read_text()


def test_console_opens_the_board_stream_on_the_stream_server_when_one_is_set(make_app):
    client = make_app(CTI_STREAM_URL="http://127.0.0.1:8001").test_client()

    html = client.get("/console").get_data(as_text=True)

    assert re.search(r'<body data-stream-url="http://127.0.0.1:8001">', html)


def test_console_without_a_stream_server_opens_the_board_stream_on_its_own_origin(client):
    assert '<body data-stream-url="">' in client.get("/console").get_data(as_text=True)


def test_every_template_and_static_file_is_in_the_package_data():
    """An installed (non-editable) package must serve the page and its library: the package-data
    globs of pyproject.toml cover every file of templates/ and static/, vendor folders included."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["middleware"]
    shipped = {path for pattern in globs for path in PACKAGE.glob(pattern) if path.is_file()}
    needed = {
        path
        for folder in ("templates", "static")
        for path in (PACKAGE / folder).rglob("*")
        if path.is_file()
    }

    assert needed - shipped == set()
