"""Who may sign in to an application: every active user, or only listed ones and members of listed groups,
and optionally only through given identity providers. Checked when a code is issued, at every refresh and at every userinfo call, so a
change takes effect at the application's next request. Administrators are not special here."""
from sqlalchemy import select

from ..extensions import db
from ..login.sessions import AuthMethod
from ..groups import membership
from ..models import ApplicationGroup, ApplicationProvider, ApplicationUser, IdentityProvider

NOT_ALLOWED = "not_allowed"
INACTIVE = "inactive_user"
WRONG_METHOD = "login_method_not_allowed"


def refusal(application, user, auth_method):
    """Why ``user``, logged in by ``auth_method`` (the stored text), may not use ``application``; None if
    they may."""
    if user is None or not user.active:
        return INACTIVE
    if not application.allow_all_users and db.session.get(ApplicationUser, (application.id, user.id)) is None:
        allowed_groups = group_ids(application)
        if not allowed_groups or not allowed_groups & membership.group_ids(user):
            return NOT_ALLOWED
    if application.providers_only:
        slug = AuthMethod(auth_method).provider_slug
        admitted = db.session.scalar(
            select(ApplicationProvider.provider_id)
            .join(IdentityProvider, IdentityProvider.id == ApplicationProvider.provider_id)
            .where(ApplicationProvider.application_id == application.id, IdentityProvider.slug == slug))
        if slug is None or admitted is None:
            return WRONG_METHOD
    return None


def group_ids(application):
    """The groups whose members may sign in to ``application`` (when it does not admit every active user)."""
    return set(db.session.scalars(select(ApplicationGroup.group_id)
                                  .where(ApplicationGroup.application_id == application.id)))
