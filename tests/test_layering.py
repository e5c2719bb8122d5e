"""The layers point one way: read from every module's imports (``ast``), nothing is run.

From the top: the factory and the commands (``middleware/commands/``: the servers, ``make run``, the
CLI) compose everything; views (``middleware/api/``) call services; services
(``middleware/services/``) call upstream clients, the store, the lookup's cache and the journal's
rules; schemas validate and serialise. At the bottom, ``middleware/runtime/`` (forks, logs, metrics,
secrets, JSON bounds) and the core modules left at the top of ``middleware/`` (errors, auth,
settings, numbers, directory, durations, timestamps) serve every layer and know none of them. So no
service imports a schema or a view; no upstream client, store, schema, lookup module or journal rule
imports a view or a service; nothing but the factory imports a command; only the upstream clients
speak HTTP (``requests``). The crossings issue 22 removed are named one by one, so putting one back
fails here. And no module under ``middleware/`` is over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("middleware", "schemas")

CORE = tuple(
    f"middleware.{name}"
    for name in ("errors", "auth", "settings", "numbers", "directory", "durations", "timestamps")
)
FLOWS = (
    "middleware.api",
    "middleware.services",
    "middleware.upstreams",
    "middleware.store",
    "middleware.lookup",
    "middleware.journal",
    "middleware.commands",
    "schemas",
)

# (the importing modules, what they must not import, why)
RULES = [
    (("middleware.services",), ("schemas",), "a service imports a schema"),
    (("middleware.services",), ("middleware.api",), "a service imports a view"),
    (
        (
            "middleware.upstreams",
            "middleware.store",
            "schemas",
            "middleware.lookup",
            "middleware.journal",
        ),
        ("middleware.api", "middleware.services"),
        "a lower layer imports a view or a service",
    ),
    (("middleware.runtime", *CORE), FLOWS, "the runtime or a core module imports a flow"),
    (
        tuple(
            f"middleware.{package}"
            for package in ("api", "services", "upstreams", "store", "lookup", "journal", "runtime")
        )
        + ("schemas", *CORE),
        ("middleware.commands",),
        "something other than the factory imports a command",
    ),
    # The crossings issue 22 removed, each named so that putting it back fails on its own.
    (
        ("middleware.errors",),
        ("middleware.lookup",),
        "the error handler knows the lookup's route (a route declares failures_as_text instead)",
    ),
    (
        ("middleware.api.spec",),
        ("middleware.lookup",),
        "describe imports the lookup's memo (the route passes memo_query=QueryMemo instead)",
    ),
    (
        ("middleware.api.tokens",),
        ("middleware.journal",),
        "a token view takes a timestamp from the call-log rules (middleware.timestamps instead)",
    ),
    (
        ("middleware.services.calls",),
        ("middleware.api.idempotency",),
        "the click-to-call service knows the Idempotent-Replayed header (the view sets it)",
    ),
]
HTTP_CLIENTS = ("requests",)
HTTP_ALLOWED = ("middleware.upstreams",)


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute (``from .x import y`` counts ``pkg.x`` and
    ``pkg.x.y``: ``y`` may be a module), wherever the import statement stands."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            found.add(origin)
            found.update(f"{origin}.{alias.name}" for alias in node.names)
    return found


MODULES = {
    _module_name(path): _imports(path)
    for package in PACKAGES
    for path in sorted((ROOT / package).rglob("*.py"))
}


def test_the_import_reader_sees_every_kind_of_import():
    """The rules below are only as good as the reader: relative, absolute, nested ones."""
    assert "middleware.services.rings" in MODULES["middleware.services.journal"]
    assert "middleware.store" in MODULES["middleware.services.journal"]
    assert "schemas.journal" in MODULES["middleware.factory"]
    assert "middleware.api.agents" in MODULES["middleware.factory"]  # imported inside a function
    assert "requests" in MODULES["middleware.upstreams.base"]


@pytest.mark.parametrize(("importers", "forbidden", "why"), RULES, ids=[r[2] for r in RULES])
def test_no_import_points_up_a_layer(importers, forbidden, why):
    wrong = sorted(
        f"{module} imports {imported}"
        for module, imported_names in MODULES.items()
        if _within(module, importers)
        for imported in imported_names
        if _within(imported, forbidden)
    )
    assert wrong == [], why


def test_only_the_upstream_clients_import_an_http_client():
    wrong = sorted(
        f"{module} imports {imported}"
        for module, imported_names in MODULES.items()
        if not _within(module, HTTP_ALLOWED)
        for imported in imported_names
        if _within(imported, HTTP_CLIENTS)
    )
    assert wrong == []


MAX_MODULE_LINES = 400  # a module a reader holds at once (issue 14)


def test_no_module_under_middleware_is_longer_than_a_reader_holds():
    long = sorted(
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path in (ROOT / "middleware").rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    )
    assert long == []


LAYERS = (*CORE, *FLOWS, "middleware.runtime", "middleware.factory", "middleware")


def test_every_module_belongs_to_a_layer():
    """A module added at the top of ``middleware/`` (or in a new package) is placed on purpose:
    a new package joins ``FLOWS`` (and the rules above), a new core module ``CORE``."""
    homeless = sorted(
        module
        for module in MODULES
        if module.startswith("middleware") and not _within(module, LAYERS)
    )
    assert homeless == []
