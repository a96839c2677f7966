"""Tables and rules that need no I/O."""

from models.audit import AuditEvent
from models.campaign import Campaign, JobRun
from models.dialog import DialogState, Outbox, OutboxStatus, Priority, ProcessedUpdate
from models.errors import DomainError
from models.evaluation import (
    EvalStatus,
    Evaluation,
    FollowUp,
    Grade,
    Poll,
    PollStatus,
    PublicVote,
    Rating,
    Side,
)
from models.files import StoredFile
from models.lookback import LookBack, LookBackOpinion, LookBackState, OwnerAnswer
from models.model_example import ModelExample, ModelProgress
from models.notice import Audience, Notice
from models.org import (
    Account,
    Category,
    Channel,
    ChannelBy,
    GroupLink,
    Invite,
    Member,
    Org,
    OrgType,
    Role,
    RoleGrant,
)
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
from models.robot import RobotHook
from models.sms import SmsSent, SmsStatus
from models.store_value import StoreValue

__all__ = [
    "Account",
    "Audience",
    "AuditEvent",
    "Campaign",
    "Category",
    "Channel",
    "ChannelBy",
    "DialogState",
    "DomainError",
    "EvalStatus",
    "Evaluation",
    "FollowUp",
    "Grade",
    "GroupLink",
    "Invite",
    "JobRun",
    "LookBack",
    "LookBackOpinion",
    "LookBackState",
    "Member",
    "ModelExample",
    "ModelProgress",
    "Notice",
    "Org",
    "OrgReport",
    "OrgType",
    "Outbox",
    "OutboxStatus",
    "OwnerAnswer",
    "OwnerKind",
    "Pause",
    "PauseReason",
    "PeerRequest",
    "Pledge",
    "PledgeItem",
    "PledgeSnapshot",
    "PledgeStatus",
    "Poll",
    "PollStatus",
    "Priority",
    "ProcessedUpdate",
    "Progress",
    "ProgressReport",
    "PublicVote",
    "Rating",
    "Rectification",
    "RectificationStatus",
    "Review",
    "ReviewChecklist",
    "RobotHook",
    "Role",
    "RoleGrant",
    "Side",
    "SmsSent",
    "SmsStatus",
    "StoreValue",
    "StoredFile",
]
