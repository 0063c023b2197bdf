"""Finding provider plugins: folders under ``plugins/`` and installed distributions' entry points in the
``geologin.providers`` group. A plugin that fails to load is reported, never fatal."""
import importlib.util
import inspect
import logging
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from .base import Provider

ENTRY_POINT_GROUP = "geologin.providers"
FOLDER_PACKAGE = "geologin_plugins"
logger = logging.getLogger("geologin.plugins")


@dataclass
class LoadedPlugin:
    provider: type
    origin: str  # "folder:/path" or "entry point: dist name"
    templates: Path | None = None
    translations: Path | None = None  # the plugin's own catalogs (<lang>/LC_MESSAGES/messages.po/.mo)


@dataclass
class PluginRegistry:
    plugins: dict = field(default_factory=dict)  # type -> LoadedPlugin
    broken: dict = field(default_factory=dict)  # name -> error message

    def get(self, type_name):
        plugin = self.plugins.get(type_name)
        return plugin.provider if plugin else None

    def types(self):
        return sorted(self.plugins)


def _provider_from(module):
    """The contract: a module exposes ``provider``, a Provider subclass."""
    provider = getattr(module, "provider", None)
    if not (inspect.isclass(provider) and issubclass(provider, Provider)):
        raise TypeError("the plugin must define `provider = <a geologin.providers.Provider subclass>`")
    return provider


def _check(provider):
    if not provider.type or not provider.type.replace("_", "").isalnum() or provider.type != provider.type.lower():
        raise TypeError(f"{provider.__name__}.type must be a lowercase identifier, got {provider.type!r}")
    names = [s.name for s in provider.settings]
    if len(names) != len(set(names)):
        raise TypeError(f"{provider.__name__} declares a setting twice")


def _import_folder(path):
    name = f"{FOLDER_PACKAGE}.{path.name}"
    if FOLDER_PACKAGE not in sys.modules:
        package = importlib.util.module_from_spec(importlib.machinery.ModuleSpec(FOLDER_PACKAGE, None,
                                                                                  is_package=True))
        package.__path__ = []
        sys.modules[FOLDER_PACKAGE] = package
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path / "__init__.py",
                                                  submodule_search_locations=[str(path)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _folder_beside(base, name):
    """``base/name`` when it is a folder (a plugin's ``templates`` or ``translations``), else None."""
    if base is None:
        return None
    path = Path(base) / name
    return path if path.is_dir() else None


def _add(registry, provider, origin, base):
    """Record ``provider``; its templates and translations are the folders of those names in ``base``."""
    _check(provider)
    if provider.type in registry.plugins:
        raise TypeError(f"provider type {provider.type!r} is already provided by "
                        f"{registry.plugins[provider.type].origin}")
    registry.plugins[provider.type] = LoadedPlugin(provider, origin, _folder_beside(base, "templates"),
                                                   _folder_beside(base, "translations"))


def discover(folders, disabled=()):
    """Load every plugin from ``folders`` and from entry points, collecting failures in ``broken``."""
    registry = PluginRegistry()
    paths = [p for folder in folders if Path(folder).is_dir()
             for p in sorted(Path(folder).iterdir()) if (p / "__init__.py").is_file()]
    if paths:
        for path in paths:
            if path.name in disabled:
                continue
            try:
                module = _import_folder(path)
                _add(registry, _provider_from(module), f"folder {path}", path)
            except Exception as error:  # a broken plugin must not take the app down
                registry.broken[path.name] = f"{type(error).__name__}: {error}"
                logger.error("provider plugin %s failed to load: %s", path, registry.broken[path.name])
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in disabled:
            continue
        try:
            loaded = entry_point.load()
            provider = loaded if inspect.isclass(loaded) else _provider_from(loaded)
            module = sys.modules.get(provider.__module__)
            base = Path(module.__file__).parent if module and module.__file__ else None
            dist = entry_point.dist.name if entry_point.dist else "?"
            _add(registry, provider, f"entry point {entry_point.value} ({dist})", base)
        except Exception as error:
            registry.broken[entry_point.name] = f"{type(error).__name__}: {error}"
            logger.error("provider plugin %s failed to load: %s", entry_point.name, registry.broken[entry_point.name])
    return registry
