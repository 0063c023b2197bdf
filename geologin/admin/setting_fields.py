"""A plugin's ``settings`` declaration (geologin.providers.Setting) as WTForms fields, and back.

This is the only place that maps a Setting kind to a form field, so a plugin declares each setting once
and the admin form follows. Field names are prefixed (``setting_<name>``) so a plugin setting can never
collide with the core's own fields (slug, label, csrf_token...)."""
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, PasswordField, SelectField, StringField

from ..web import strip

try:
    from wtforms.fields.choices import SelectChoice
except ImportError:  # WTForms < 3.3 takes (value, label) tuples
    def SelectChoice(value, label):
        return (value, label)

PREFIX = "setting_"
SECRET_STORED = _l("A secret is stored; leave empty to keep it.")


class MarkRequired:
    """Marks a field as required (the ``required`` flag, for the label and the input) without checking
    anything: the plugin's ``clean_settings`` and idp/service.py report a missing value, in one place, so
    every problem of a submitted form is shown at once."""

    field_flags = {"required": True}

    def __call__(self, form, field):
        return None


def choice(value, label):
    """One option of a SelectField, in the form this WTForms version prefers."""
    return SelectChoice(value, label)


def field_name(setting_name):
    return PREFIX + setting_name


def _field_for(setting, value, secret_stored):
    label, description = setting.label, setting.help or ""
    required = [MarkRequired()] if setting.required else []
    if setting.kind == "secret":
        # Never pre-filled: PasswordField does not render a value, and none is given to it anyway.
        return PasswordField(label, validators=[] if secret_stored else required,
                             description=SECRET_STORED if secret_stored else description,
                             render_kw={"autocomplete": "new-password", "spellcheck": "false"})
    if setting.kind == "bool":
        return BooleanField(label, default=bool(value), description=description)
    if setting.kind == "choice":
        return SelectField(label, choices=[choice(str(v), l) for v, l in setting.choices], validators=required,
                           default=None if value is None else str(value), description=description)
    render_kw = {"spellcheck": "false", "autocapitalize": "none"}
    if setting.kind == "url":
        render_kw.update(type="url", inputmode="url")
    return StringField(label, validators=required, default="" if value is None else value,
                       description=description, filters=[strip], render_kw=render_kw)


def with_setting_fields(form_class, settings, values=None, stored_secrets=()):
    """A subclass of ``form_class`` with one field per Setting, in declaration order. ``values`` are the
    current plain settings (editing) or None (creating: each Setting's default); ``stored_secrets`` names
    the secrets already stored, whose fields may then be left empty."""
    values = values or {}
    attrs = {}
    for setting in settings:
        value = values.get(setting.name, setting.default) if values else setting.default
        attrs[field_name(setting.name)] = _field_for(setting, value, setting.name in stored_secrets)
    return type(form_class.__name__, (form_class,), attrs)


def setting_fields(form, settings):
    """The bound fields of ``form`` for ``settings``, in declaration order (for templates)."""
    return [form[field_name(s.name)] for s in settings]


def read_settings(form, settings):
    """The submitted values as ``(settings, secrets)`` dicts, ready for providers.create/update_provider.
    An empty secret stays empty, which means "keep the stored one"."""
    plain, secrets = {}, {}
    for setting in settings:
        data = form[field_name(setting.name)].data
        if setting.kind == "secret":
            secrets[setting.name] = data or ""
        elif setting.kind == "bool":
            plain[setting.name] = bool(data)
        else:
            plain[setting.name] = data if data is not None else ""
    return plain, secrets


def put_errors(form, settings, errors):
    """Attach ProviderChangeError/SettingsError messages to the setting fields; return the ones left over."""
    names = {s.name for s in settings}
    left = {}
    for name, message in errors.items():
        message = str(message)  # a lazy string would reach the page unescaped (LazyString.__html__)
        if name in names:
            form[field_name(name)].errors.append(message)
        else:
            left[name] = message
    return left
