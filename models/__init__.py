"""Tables and rules that need no I/O."""

from models.audit import AuditEvent
from models.campaign import Campaign, JobRun
from models.dialog import DialogState, Outbox, OutboxStatus, Priority, ProcessedUpdate
from models.errors import DomainError
from models.files import StoredFile
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
from models.progress import (
    OrgReport,
    Pause,
    PauseReason,
    Progress,
    ProgressReport,
    Rectification,
    RectificationStatus,
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
    "JobRun",
    "Member",
    "Org",
    "OrgReport",
    "OrgType",
    "Outbox",
    "OutboxStatus",
    "OwnerKind",
    "Pause",
    "PauseReason",
    "PeerRequest",
    "Pledge",
    "PledgeItem",
    "PledgeSnapshot",
    "PledgeStatus",
    "Priority",
    "ProcessedUpdate",
    "Progress",
    "ProgressReport",
    "Rectification",
    "RectificationStatus",
    "Review",
    "ReviewChecklist",
    "Role",
    "RoleGrant",
    "StoredFile",
]
