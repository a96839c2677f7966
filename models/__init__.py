"""Tables and rules that need no I/O."""

from models.audit import AuditEvent
from models.campaign import Campaign
from models.dialog import DialogState, Outbox, OutboxStatus, Priority, ProcessedUpdate
from models.errors import DomainError
from models.org import Account, Category, GroupLink, Invite, Member, Org, OrgType, Role, RoleGrant
from models.pledge import (
    OwnerKind,
    PeerRequest,
    Pledge,
    PledgeItem,
    PledgeSnapshot,
    PledgeStatus,
    Review,
    ReviewChecklist,
)

__all__ = [
    "Account",
    "AuditEvent",
    "Campaign",
    "Category",
    "DialogState",
    "DomainError",
    "GroupLink",
    "Invite",
    "Member",
    "Org",
    "OrgType",
    "Outbox",
    "OutboxStatus",
    "OwnerKind",
    "PeerRequest",
    "Pledge",
    "PledgeItem",
    "PledgeSnapshot",
    "PledgeStatus",
    "Priority",
    "ProcessedUpdate",
    "Review",
    "ReviewChecklist",
    "Role",
    "RoleGrant",
]
