"""The layout docs/architecture.md describes, checked on the source: no import cycle between geologin's
modules (imports at the top of a module and inside functions alike), each area imports only what the table
below allows (the same table is in docs/architecture.md, and this file checks the two agree), plugins import
only the plugin API, and no module imports another module's private (``_name``) names."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "geologin"

# What each area may import besides itself. An area is a package of geologin (login, idp...) or a top-level
# module (models, web...); "login.sessions" allows that one module of an area, not the whole area.
FOUNDATION = {"config", "extensions", "models", "encryption", "validation", "web"}
ALLOWED = {
    "providers": set(),  # the plugin API: nothing of the core, so a plugin never reaches it through the API
    "providers.testing": {"app", *FOUNDATION, "accounts", "idp"},  # the contract kit drives a whole app
    "config": set(),
    "extensions": set(),
    "logs": set(),
    "validation": set(),
    "models": {"extensions"},
    "encryption": {"config"},
    "web": {"extensions", "validation"},
    "health": {"extensions", "models"},
    "migrations": set(),
    "audit": {"extensions", "models"},
    "accounts": {*FOUNDATION, "audit", "login.sessions", "login.throttle"},
    # Groups say who is in what; they never judge a login or an application.
    "groups": {*FOUNDATION, "audit"},
    "idp": {*FOUNDATION, "audit", "providers", "login.sessions", "groups"},
    "login": {*FOUNDATION, "audit", "accounts", "idp", "providers", "groups"},
    "i18n": {"config", "extensions", "login.redirects"},
    "admin": {*FOUNDATION, "audit", "accounts", "idp", "providers", "login.sessions", "login.redirects",
              "login.throttle", "apps", "groups"},
    # Applications rely on geologin's logins: they read sessions, never how a login is done; token exchange
    # hands out a person's kept provider token through idp.tokens, its one entry point.
    "apps": {*FOUNDATION, "audit", "login.sessions", "i18n", "groups", "idp.tokens"},
    # The read-only DHIS2 proxy: the person's kept token (idp), sent through the provider's plugin object.
    "proxy": {*FOUNDATION, "audit", "apps", "idp", "providers", "login.sessions"},
    "cli": {*FOUNDATION, "audit", "accounts", "idp", "providers", "login.throttle", "apps", "groups"},
    "app": {"*"},  # geologin/__init__.py (create_app) puts every area together
    "wsgi": {"app", "config"},
    "__main__": {"wsgi"},
    "gunicorn_conf": set(),
}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def area(module):
    """``geologin.login.views`` -> ``login``; the plugin API's contract kit is an area of its own."""
    parts = module.split(".")[1:]
    if not parts:
        return "app"
    if parts[:2] == ["providers", "testing"]:
        return "providers.testing"
    return parts[0]


def imports(module):
    """(imported geologin module, names imported from it, line) for every import of ``module``, wherever
    it is (top level, functions, classes). ``from package import submodule`` counts as the submodule."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, (), node.lineno) for alias in node.names if alias.name.startswith("geologin")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not source.startswith("geologin"):
                continue
            names = [alias.name for alias in node.names]
            submodules = [n for n in names if f"{source}.{n}" in MODULES]
            found += [(f"{source}.{n}", (), node.lineno) for n in submodules]
            others = tuple(n for n in names if n not in submodules)
            if others:
                found.append((source, others, node.lineno))
    return [(target, names, line) for target, names, line in found if target in MODULES]


GRAPH = {module: imports(module) for module in MODULES}


def cycles():
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target, _, _ in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or any(t == node for t, _, _ in GRAPH[node]):
                found.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    return found


def test_the_graph_sees_the_imports_it_must():
    """The parser is not blind: the login views' imports, top-level and inside a function, are found."""
    assert "geologin.login.sessions" in {t for t, _, _ in GRAPH["geologin.login.views"]}
    assert "geologin.login.views" in {t for t, _, _ in GRAPH["geologin"]}  # inside create_app


def test_no_import_cycle_between_modules():
    assert cycles() == []


def test_each_area_imports_only_what_the_architecture_allows():
    wrong = []
    for module, edges in GRAPH.items():
        source = area(module)
        allowed = ALLOWED[source]
        for target, _, line in edges:
            destination = area(target)
            if destination == source or "*" in allowed:
                continue
            submodule = ".".join(target.split(".")[1:3])
            if destination not in allowed and submodule not in allowed:
                wrong.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}")
    assert wrong == []


def test_every_area_is_in_the_table():
    assert {area(module) for module in MODULES} <= set(ALLOWED)


def test_no_module_imports_a_private_name_of_another():
    private = [f"{MODULES[module].relative_to(ROOT)}:{line} imports {name} from {target}"
               for module, edges in GRAPH.items() for target, names, line in edges
               for name in names if name.startswith("_") and not name.startswith("__") and target != module]
    assert private == []


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "plugins").rglob("*.py")
                                        if not p.name.startswith(("fake_", "test_"))),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_the_plugin_api(path):
    core = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        core += [n for n in names if n.split(".")[0] == "geologin" and n.split(".")[:2] != ["geologin", "providers"]]
    assert core == []


def test_the_documented_table_is_this_one():
    """docs/architecture.md's table lists, for each area, what it may import: the same as ALLOWED."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = {}
    for match in re.finditer(r"^\| `([\w.]+)` \|([^|]*)\|", text, flags=re.M):
        rows[match.group(1)] = set(re.findall(r"`([\w.*]+)`", match.group(2)))
    expected = {name: {"*"} if "*" in allowed else allowed for name, allowed in ALLOWED.items()}
    assert rows == expected


def test_the_core_never_branches_on_a_plugins_name():
    """What a plugin can do is asked of the plugin (the plugin API), never inferred from its type name: a
    second plugin with the same capability must get the same treatment."""
    names = {path.name for path in (ROOT / "plugins").iterdir() if (path / "__init__.py").exists()}
    found = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "templates").rglob("*.html")]:
        for match in re.finditer(r"\btype\s*[!=]=\s*['\"](\w+)['\"]", path.read_text()):
            if match.group(1) in names:
                found.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert found == []
