"""S2 依岗提承诺: open a draft, fill its items, check it (Q1–Q4) and submit it for review.

Drafts live in the database item by item, so a dialog can stop at any point and resume after a
restart or on another device. Only the drafter (the member, or the secretary for the
organization's pledge) may change a draft, and only while it is a draft.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import access, audit, quality
from campaign.access import Actor
from campaign.dates import within_campaign
from models.base import utcnow
from models.campaign import Campaign
from models.errors import DomainError
from models.org import Category, Member, Org, OrgType, Role
from models.pledge import (
    OwnerKind,
    Pledge,
    PledgeEvent,
    PledgeItem,
    PledgeStatus,
    apply,
)
from templates.lexicon import lexicon

#: editable item fields and their column sizes
ITEM_FIELDS: dict[str, int] = {"content": 2000, "goal": 1000, "measures": 2000}
POST_MAX = 128
MAX_ITEMS = 10
VANGUARDS = ("study", "achieve", "serve", "law", "ethos")
CORPUS_LIMIT = 2000

# Deadline forms people type: the numeric ones here, the words in templates/lexicon (dates).
_FULL_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$")
_MONTH_DAY = re.compile(r"^(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$")
_MONTH_END = re.compile(r"^(?:(\d{4})\s*年)?\s*(\d{1,2})\s*月\s*(?:底|末|份|前)?$")
_BEFORE_CJK = re.compile(r"[前之内]")
_ORDINAL = re.compile(r"(\d{1,2})(?:st|nd|rd|th)\b")


def _words(key: str) -> tuple[str, ...]:
    return lexicon("dates").get(key, ())


def _month_number(word: str) -> int | None:
    for key in ("months", "months_short"):
        names = _words(key)
        if word in names:
            return names.index(word) + 1
    return None


def _strip_prefix(text: str, prefixes: tuple[str, ...]) -> tuple[str, bool]:
    for prefix in sorted(prefixes, key=len, reverse=True):
        if text.startswith(prefix + " "):
            return text[len(prefix) + 1 :].strip(), True
    return text, False


def _parse_english(t: str, year: int) -> date | None:
    """Read English deadlines: "end of June", "June 30", "30 June 2027", "by June 30th"."""
    t = _ORDINAL.sub(r"\1", t.replace(",", " ").replace(".", " "))
    t = " ".join(t.split())
    t, _ = _strip_prefix(t, _words("before"))
    t, month_end = _strip_prefix(t, _words("month_end"))
    tokens = t.split()
    if tokens and tokens[-1] == "end":  # "June end"
        tokens, month_end = tokens[:-1], True
    y = year
    if tokens and re.fullmatch(r"\d{4}", tokens[-1]):
        y = int(tokens.pop())
    if len(tokens) == 1 and (m := _month_number(tokens[0])):
        return date(y, m, calendar.monthrange(y, m)[1])
    if len(tokens) == 2 and not month_end:
        first, second = tokens
        if (m := _month_number(first)) and second.isdigit():
            return date(y, m, int(second))
        if (m := _month_number(second)) and first.isdigit():
            return date(y, m, int(first))
    return None


def parse_deadline(text: str, year: int) -> date | None:
    """Return the date meant by a typed deadline: 2026-06-30, 6月30日, 6月底, 年底, end of June."""
    t = " ".join(text.strip().lower().split()) if text else ""
    if not t:
        return None
    if t in _words("year_end"):
        return date(year, 12, 31)
    if t in _words("half_year"):
        return date(year, 6, 30)
    cjk = _BEFORE_CJK.sub("", t)
    try:
        if m := _FULL_DATE.match(cjk):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _MONTH_DAY.match(cjk):
            return date(year, int(m[1]), int(m[2]))
        if m := _MONTH_END.match(cjk):
            y = int(m[1]) if m[1] else year
            month = int(m[2])
            return date(y, month, calendar.monthrange(y, month)[1])
        if cjk in _words("year_end"):
            return date(year, 12, 31)
        return _parse_english(t, year)
    except ValueError:
        return None


def is_standing_duty(item: PledgeItem) -> bool:
    """Tell whether an item is a standing duty of the basic pledge (may be kept 长期)."""
    content = item.content.lower()
    return item.basic and any(p.lower() in content for p in lexicon("standing")["duties"])


def means_standing(text: str) -> bool:
    """Tell whether a typed deadline means 长期 (standing)."""
    return " ".join(text.strip().lower().split()) in lexicon("standing")["words"]


def fill_placeholder(text: str, name: str, value: str) -> str:
    """Put ``value`` into the 【name】 blank of ``text``, without doubling a unit after it.

    The blank in "每周【坐班天数】天" is followed by 天, so "5天" gives "每周5天", not "5天天".
    """
    mark = f"【{name}】"
    at = text.find(mark)
    if at < 0:
        return text
    after = text[at + len(mark) :]
    value = value.strip()
    for size in range(min(len(value), len(after)), 0, -1):
        unit = after[:size]
        if value.endswith(unit) and len(value) > size and not unit.isdigit():
            value = value[:-size].rstrip()
            break
    return text[:at] + value + after


@dataclass(frozen=True)
class Target:
    """Whose pledge a person may draft: their own, or an organization's as its secretary."""

    owner: OwnerKind
    org_id: int
    org_name: str


async def campaign_for(session: AsyncSession, org: Org) -> Campaign | None:
    """Return the active campaign covering ``org`` (the newest, if several)."""
    rows = (
        await session.exec(
            select(Campaign, Org.path)
            .join(Org, col(Org.id) == Campaign.root_org_id)
            .where(Campaign.active == True)  # noqa: E712
            .order_by(col(Campaign.year).desc())
        )
    ).all()
    for camp, root_path in rows:
        if org.path.startswith(root_path):
            return camp
    return None


async def targets(session: AsyncSession, actor: Actor) -> list[Target]:
    """Return what the actor may draft: their own pledge, then each organization's."""
    own = await session.get(Org, actor.org_id)
    out = [Target(OwnerKind.MEMBER, actor.org_id, own.name if own else "")]
    for org_id in actor.orgs_with(Role.SECRETARY):
        org = await session.get(Org, org_id)
        if org is not None:
            out.append(Target(OwnerKind.ORG, org.id, org.name))
    return out


async def find_pledge(
    session: AsyncSession, campaign_id: int, owner: OwnerKind, org_id: int, member_id: int | None
) -> Pledge | None:
    """Return the pledge of one owner in one campaign, if any."""
    query = select(Pledge).where(
        Pledge.campaign_id == campaign_id,
        Pledge.owner_kind == owner,
    )
    if owner is OwnerKind.MEMBER:
        query = query.where(Pledge.owner_member_id == member_id)
    else:
        query = query.where(Pledge.org_id == org_id)
    return (await session.exec(query)).first()


async def open_draft(
    session: AsyncSession,
    actor: Actor,
    target: Target,
    *,
    today: date,
    render: Callable[[str], str],
) -> Pledge:
    """Return the target's pledge, creating the draft or reopening a returned one for revision.

    Raises:
        DomainError: ``pledge.no_campaign``, or ``error.forbidden`` for a target the actor
            may not draft.
    """
    org = await session.get(Org, target.org_id)
    if org is None:
        raise DomainError("error.forbidden")
    if target.owner is OwnerKind.MEMBER and target.org_id != actor.org_id:
        raise DomainError("error.forbidden")
    if target.owner is OwnerKind.ORG and not actor.is_secretary_of(target.org_id):
        raise DomainError("error.forbidden")
    camp = await campaign_for(session, org)
    if camp is None:
        raise DomainError("pledge.no_campaign")
    member_id = actor.member_id if target.owner is OwnerKind.MEMBER else None
    pledge = await find_pledge(session, camp.id, target.owner, target.org_id, member_id)
    if pledge is None:
        member = await session.get(Member, actor.member_id)
        pledge = Pledge(
            campaign_id=camp.id,
            owner_kind=target.owner,
            org_id=target.org_id,
            owner_member_id=member_id,
            drafted_by=actor.member_id,
            category=member.category.value
            if target.owner is OwnerKind.MEMBER and member.category
            else None,
            post=member.post if target.owner is OwnerKind.MEMBER else "",
        )
        session.add(pledge)
        await session.flush()
        if target.owner is OwnerKind.ORG:
            for seq, draft in enumerate(quality.basic_items(org.type, render)):
                session.add(
                    PledgeItem(
                        pledge_id=pledge.id,
                        seq=seq,
                        content=draft.content,
                        goal=draft.goal,
                        measures=draft.measures,
                        basic=True,
                    )
                )
        await audit.record(
            session,
            "pledge.drafted",
            actor=actor.member_id,
            subject=f"pledge:{pledge.id}",
            payload={"owner": target.owner.value, "org_id": target.org_id},
        )
        return pledge
    if pledge.status is PledgeStatus.RETURNED:
        if not access.may_draft(actor, pledge):
            raise DomainError("error.forbidden")
        pledge.status = apply(pledge.status, PledgeEvent.REVISE)
        pledge.version += 1
        pledge.updated_at = utcnow()
        session.add(pledge)
        await audit.record(
            session,
            "pledge.revised",
            actor=actor.member_id,
            subject=f"pledge:{pledge.id}",
            payload={"version": pledge.version},
        )
    return pledge


async def items_of(session: AsyncSession, pledge_id: int) -> list[PledgeItem]:
    """Return a pledge's items in order."""
    rows = await session.exec(
        select(PledgeItem)
        .where(PledgeItem.pledge_id == pledge_id)
        .order_by(col(PledgeItem.seq), col(PledgeItem.id))
    )
    return list(rows.all())


async def _editable(session: AsyncSession, actor: Actor, pledge_id: int) -> Pledge:
    pledge = await session.get(Pledge, pledge_id)
    if pledge is None or not access.may_draft(actor, pledge):
        raise DomainError("error.forbidden")
    if pledge.status is not PledgeStatus.DRAFT:
        raise DomainError("pledge.not_editable", status=pledge.status.value)
    return pledge


async def set_profile(
    session: AsyncSession,
    actor: Actor,
    pledge_id: int,
    *,
    category: str | None = None,
    post: str | None = None,
) -> Pledge:
    """Set the member's category or post on their draft (changeable from the roster's)."""
    pledge = await _editable(session, actor, pledge_id)
    if category is not None:
        pledge.category = Category(category).value
    if post is not None:
        post = post.strip()
        if not post:
            raise DomainError("pledge.empty")
        if len(post) > POST_MAX:
            raise DomainError("error.too_long", limit=POST_MAX)
        pledge.post = post
    pledge.updated_at = utcnow()
    session.add(pledge)
    return pledge


async def add_item(session: AsyncSession, actor: Actor, pledge_id: int) -> PledgeItem:
    """Append an empty item to a draft.

    Raises:
        DomainError: ``pledge.too_many_items`` past the limit.
    """
    await _editable(session, actor, pledge_id)
    items = await items_of(session, pledge_id)
    if len(items) >= MAX_ITEMS:
        raise DomainError("pledge.too_many_items", limit=MAX_ITEMS)
    item = PledgeItem(pledge_id=pledge_id, seq=(items[-1].seq + 1) if items else 0)
    session.add(item)
    await session.flush()
    return item


async def _item(session: AsyncSession, actor: Actor, pledge_id: int, item_id: int) -> PledgeItem:
    await _editable(session, actor, pledge_id)
    item = await session.get(PledgeItem, item_id)
    if item is None or item.pledge_id != pledge_id:
        raise DomainError("error.forbidden")
    return item


async def set_item_field(
    session: AsyncSession,
    actor: Actor,
    pledge_id: int,
    item_id: int,
    field: str,
    value: str,
    *,
    year: int,
) -> PledgeItem:
    """Set one field of an item from what the drafter typed.

    Raises:
        DomainError: ``error.too_long``, ``pledge.empty``, ``pledge.bad_deadline``,
            ``pledge.basic_fixed`` (the basic pledge's wording cannot change).
    """
    item = await _item(session, actor, pledge_id, item_id)
    value = value.strip()
    if field == "deadline":
        if means_standing(value):
            if not is_standing_duty(item):
                raise DomainError("pledge.standing_only_duties")
            item.deadline, item.standing = None, True
            session.add(item)
            return item
        parsed = parse_deadline(value, year)
        if parsed is None:
            raise DomainError("pledge.bad_deadline", value=value[:40])
        pledge = await session.get(Pledge, pledge_id)
        campaign = await session.get(Campaign, pledge.campaign_id) if pledge else None
        if campaign is not None:
            within_campaign(parsed, campaign)
        item.deadline, item.standing = parsed, False
    elif field == "vanguard":
        if value not in VANGUARDS:
            raise DomainError("error.bad_button")
        item.vanguard = value
    elif field in ITEM_FIELDS:
        if not value:
            raise DomainError("pledge.empty")
        if len(value) > ITEM_FIELDS[field]:
            raise DomainError("error.too_long", limit=ITEM_FIELDS[field])
        if field == "content" and item.basic:
            raise DomainError("pledge.basic_fixed")
        setattr(item, field, value)
    else:
        raise DomainError("error.bad_button")
    session.add(item)
    return item


async def set_standing(
    session: AsyncSession, actor: Actor, pledge_id: int, item_id: int
) -> PledgeItem:
    """Keep a standing duty of the basic pledge 长期: no deadline, never overdue.

    Raises:
        DomainError: ``pledge.standing_only_duties`` for any other item.
    """
    item = await _item(session, actor, pledge_id, item_id)
    if not is_standing_duty(item):
        raise DomainError("pledge.standing_only_duties")
    item.deadline, item.standing = None, True
    session.add(item)
    return item


async def remove_item(session: AsyncSession, actor: Actor, pledge_id: int, item_id: int) -> None:
    """Remove an item from a draft; the basic pledge's items cannot be removed."""
    item = await _item(session, actor, pledge_id, item_id)
    if item.basic:
        raise DomainError("pledge.basic_fixed")
    await session.delete(item)


async def corpus(session: AsyncSession, pledge: Pledge) -> list[quality.OtherText]:
    """Return other pledges' items of the same organization and its siblings, this campaign."""
    org = await session.get(Org, pledge.org_id)
    scope = org.path
    if org.parent_id is not None:
        parent = await session.get(Org, org.parent_id)
        scope = parent.path if parent else scope
    rows = (
        await session.exec(
            select(PledgeItem, Pledge, Member.name, Org.name)
            .join(Pledge, col(Pledge.id) == PledgeItem.pledge_id)
            .join(Org, col(Org.id) == Pledge.org_id)
            .outerjoin(Member, col(Member.id) == Pledge.owner_member_id)
            .where(
                Pledge.campaign_id == pledge.campaign_id,
                Pledge.id != pledge.id,
                col(Org.path).startswith(scope),
            )
            .order_by(col(PledgeItem.id).desc())
            .limit(CORPUS_LIMIT)
        )
    ).all()
    return [
        quality.OtherText(
            pledge_id=p.id,
            owner_name=member_name or org_name,
            org_id=p.org_id,
            text=quality.comparable_text(item),
            basic=item.basic,
        )
        for item, p, member_name, org_name in rows
    ]


async def check(session: AsyncSession, pledge: Pledge, today: date) -> list[quality.Finding]:
    """Run the quality checks (Q1–Q4, S2) on a pledge as it stands."""
    camp = await session.get(Campaign, pledge.campaign_id)
    org = await session.get(Org, pledge.org_id)
    items = await items_of(session, pledge.id)
    return quality.check_pledge(
        items,
        (camp.starts_on, camp.ends_on),
        today,
        await corpus(session, pledge),
        own_pledge_id=pledge.id,
        require_basic=pledge.owner_kind is OwnerKind.ORG
        and org.type in (OrgType.VILLAGE, OrgType.COMMUNITY),
    )


def item_snapshot(item: PledgeItem) -> dict:
    """Return an item as JSON-friendly data, as kept in snapshots and shown on cards."""
    return {
        "content": item.content,
        "goal": item.goal,
        "measures": item.measures,
        "deadline": item.deadline.isoformat() if item.deadline else None,
        "vanguard": item.vanguard,
        "basic": item.basic,
        # only when set, so that the content hash of every other item stays as it was
        **({"standing": True} if item.standing else {}),
    }


def content_hash(items: list[dict], category: str | None, post: str) -> str:
    """Return the sha256 of a pledge's content, for the audit trail."""
    blob = json.dumps(
        {"items": items, "category": category, "post": post},
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()
