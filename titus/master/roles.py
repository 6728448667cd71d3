"""Which IAM roles a job may ask for (``container.securityProfile.iamRole``).

Two settings list the roles allowed, each a map of name -> roles:

- ``iam_roles_by_user``: by the principal that submits the job;
- ``iam_roles_by_capacity_group``: by the job's capacity group (``DEFAULT`` when it names none).

The rule: a job asking for a role must be allowed it by **every** map that configures its
submitter or its group. A user the user map does not mention is not restricted by it; a group
the group map does not mention is held to the map's ``DEFAULT`` entry, if it has one (any
user may name any group, even one that does not exist). With neither map set (the default) any
role is allowed, as Titus does without IAM validation. The
stricter rule (not the union of the lists) is on purpose: a submitter chooses the job's
capacity group, so with a union a user limited to one role could take any role some group
allows just by naming that group. ``"*"`` in a list allows every role; an empty list allows
none. Roles are compared as written (a name and its ARN are different entries). A job asking
for no role is never refused.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Optional

from pydantic import BeforeValidator

from titus.master.errors import Forbidden
from titus.master.model import JobDescriptor
from titus.master.records import DEFAULT_GROUP

if TYPE_CHECKING:
    from titus.master.config import MasterSettings

ANY_ROLE = "*"
ROLE_FIELD = "container.securityProfile.iamRole"


def _json_text(value: Any) -> Any:
    # TITUS_IAM_ROLES_BY_USER='{"alice": ["role-a"]}': the environment gives text
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
    return value


# The type of the role settings: a mapping, or its JSON text (from the environment).
RoleMap = Annotated[dict[str, list[str]], BeforeValidator(_json_text)]


def _allows(roles: list[str], role: str) -> bool:
    return ANY_ROLE in roles or role in roles


def role_refusal(descriptor: JobDescriptor, principal_name: str,
                 settings: MasterSettings) -> Optional[str]:
    """Why the job may not have its IAM role (a message naming the role), or None if it may.

    Pure: it reads the descriptor and the settings only."""
    role = descriptor.container.securityProfile.iamRole
    if not role:
        return None
    by_user = settings.iam_roles_by_user
    if principal_name in by_user and not _allows(by_user[principal_name], role):
        return f"iamRole {role!r} is not allowed for user {principal_name!r}"
    group = descriptor.capacityGroup or DEFAULT_GROUP
    by_group = settings.iam_roles_by_capacity_group
    # any user may name any group: one the map does not list is held to DEFAULT's list
    listed = group if group in by_group else DEFAULT_GROUP
    if listed in by_group and not _allows(by_group[listed], role):
        return f"iamRole {role!r} is not allowed in capacity group {group!r}"
    return None


def check_role(descriptor: JobDescriptor, principal_name: str,
               settings: MasterSettings) -> None:
    """Raise :class:`Forbidden` (HTTP 403, on the role's field) if the job may not have its
    IAM role."""
    refusal = role_refusal(descriptor, principal_name, settings)
    if refusal is not None:
        raise Forbidden(refusal, field=ROLE_FIELD)
