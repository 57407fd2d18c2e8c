"""Provisioning from the command line: staff accounts and API tokens, each audited.

Used by `shopkeeper createuser`, `shopkeeper createtoken` and `shopkeeper seed`. A token is
shown once, when it is issued: only its SHA-256 is stored.
"""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from shopkeeper.accounts.models import ApiToken, User, hash_token
from shopkeeper.accounts.permissions import Role
from shopkeeper.audit.services import record
from shopkeeper.errors import Conflict, InvalidInput, NotFound

CLI_ACTOR = "Shopkeeper CLI"


class EmailTaken(Conflict):
    code = "email_taken"
    title = "A user with this e-mail address already exists"


class UnknownRole(InvalidInput):
    code = "unknown_role"
    title = "Unknown role"


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "No user has this e-mail address"


def parse_role(role: str) -> Role:
    try:
        return Role(role.strip().lower())
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise UnknownRole(f"Unknown role {role!r}; choose one of: {choices}", role=role) from None


def _validated_email(email: str) -> str:
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(f"{email!r} is not a valid e-mail address", field="email") from None
    return email


def create_user(
    *, email: str, password: str, role: str, full_name: str = "", actor_label: str = CLI_ACTOR
) -> User:
    """Create a staff account with one role; the password must pass the configured validators."""
    email, parsed_role = _validated_email(email), parse_role(role)
    try:
        validate_password(password, User(email=email, full_name=full_name))
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages), field="password") from None
    if User.objects.filter(email__iexact=email).exists():
        raise EmailTaken(f"A user with e-mail {email} already exists", email=email)
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email, password=password, role=parsed_role.value, full_name=full_name
            )
            record(
                action="user.created",
                target_type="user",
                target_id=user.pk,
                target_label=user.email,
                actor_label=actor_label,
                after={"email": user.email, "role": user.role},
            )
    except IntegrityError:
        raise EmailTaken(f"A user with e-mail {email} already exists", email=email) from None
    return user


def issue_api_token(*, email: str, name: str = "", actor_label: str = CLI_ACTOR) -> str:
    """Create a bearer token for an active user and return it; it cannot be shown again."""
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise UserNotFound(f"No user has the e-mail address {email.strip()!r}")
    if not user.is_active:
        raise InvalidInput(f"{user.email} is deactivated; a token would not work")
    raw = ApiToken.new_raw_token()
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name.strip(), key_hash=hash_token(raw))
        record(
            action="token.created",
            target_type="api_token",
            target_id=token.pk,
            target_label=token.name or f"token {token.pk}",
            actor_label=actor_label,
            details={"user": user.email, "role": user.role},
        )
    return raw
