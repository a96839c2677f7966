"""Import the roster (花名册): the organization tree, the people on it and their roles.

The file format is a contract (SPEC.md, "Roster file"). Reading a file and checking its rows is
pure: ``validate_rows`` turns rows into records or a list of ``RowError``. Writing is
all-or-nothing: one transaction, bulk statements, existing organizations and phones preloaded
into dicts, so that 100,000 rows take seconds rather than minutes.

Progress callbacks receive ``(done, total)``. ``parse_roster`` counts rows read, against an
estimate taken from the file until every row has been read; ``import_parsed`` counts rows
written. ``import_roster`` does both, so it counts every row twice: 0 to twice the row count.
"""

from __future__ import annotations

import csv
import dataclasses
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from campaign import cells as sheet_cells
from campaign.channels import SHOWN_CHANNEL_WORDS, parse_channel
from campaign.db import Store
from campaign.identity import normalize_phone
from models.base import utcnow
from models.org import Category, Channel, ChannelBy, Member, Org, OrgType, Role, RoleGrant
from models.text import unsafe_chars
from templates import DEFAULT_LOCALE, catalog
from templates.lexicon import lexicon

Progress = Callable[[int, int], None]

# -- the file format: header words and the roster's vocabulary (data, not messages) -----------

#: column key -> header word in the file, in the order the demo writes them
HEADERS: dict[str, str] = {
    "org": "组织",
    "org_type": "组织类型",
    "name": "姓名",
    "phone": "手机",
    "category": "类别",
    "post": "岗位",
    "roles": "角色",
    "rank": "职级",
    "channel": "通知方式",
}
#: optional columns a roster may have that written rosters (the demo's) leave out
UNWRITTEN_COLUMNS = frozenset({"channel"})
HEADER: tuple[str, ...] = tuple(w for k, w in HEADERS.items() if k not in UNWRITTEN_COLUMNS)
#: an organization path as the file gives it, quoted in messages as an example
EXAMPLE_ORG_PATH = "陇南市/武都区/城关镇/东江村党支部"
OPTIONAL_COLUMNS = frozenset({"rank", "channel"})
#: what the office may write in 通知方式 (opting out is the person's own choice)
OFFICE_CHANNELS = (Channel.AUTO, Channel.TELEGRAM, Channel.SMS, Channel.GROUP)

#: 组织类型 words -> OrgType
ORG_TYPE_WORDS: dict[str, OrgType] = {
    "村": OrgType.VILLAGE,
    "社区": OrgType.COMMUNITY,
    "企业": OrgType.ENTERPRISE,
    "机关": OrgType.ORGAN,
    "事业单位": OrgType.INSTITUTION,
    "学校": OrgType.SCHOOL,
    "非公企业": OrgType.PRIVATE_ENTERPRISE,
    "社会组织": OrgType.SOCIAL,
    "其他": OrgType.OTHER,
}

#: 类别 words -> Category
CATEGORY_WORDS: dict[str, Category] = {
    "农村": Category.RURAL,
    "社区": Category.COMMUNITY,
    "企业": Category.ENTERPRISE,
    "机关事业": Category.ORGAN,
    "窗口服务": Category.WINDOW,
}

#: 角色 words -> Role
ROLE_WORDS: dict[str, Role] = {
    "党员": Role.MEMBER,
    "书记": Role.SECRETARY,
    "审核人": Role.REVIEWER,
    "创先办": Role.OFFICE,
    "评议员": Role.EVALUATOR,
}

#: separators between roles in one 角色 cell
ROLE_SEPARATORS = ("、", ",", "，")
#: roles whose holders pledge as Party members, so their category must be known
ROLES_NEEDING_CATEGORY = frozenset({Role.MEMBER, Role.SECRETARY})
#: separators between levels of an organization path (the full-width one is tolerated)
PATH_SEPARATORS = ("/", "／")

NAME_MAX = 64
POST_MAX = 128
RANK_MAX = 32
ORG_NAME_MAX = 128
ORG_PATH_MAX = 1024
ORG_DEPTH_MAX = 16
#: path segments that mean "here" and "up" to every file system and URL: never a name
DOT_SEGMENTS = frozenset({".", ".."})

#: a re-import may deactivate at most this share of the active people, and at most this many,
#: unless the operator says so (``--allow-deactivate``)
DEACTIVATE_SHARE = 0.10
DEACTIVATE_MAX = 20
#: people named one by one in a dry run's list of deactivations
DRY_RUN_LIST = 50

#: rows per write batch: bounds memory and sets how often progress is reported
CHUNK = 5000
#: ids per ``IN (...)`` list, well under SQLite's and PostgreSQL's parameter limits
IN_CHUNK = 900
#: PostgreSQL advisory lock key that serializes roster imports ("roster" in ASCII)
_PG_LOCK_KEY = 0x726F73746572

_ERR = "roster.error."


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """One thing wrong with the file, where the user can find it.

    Attributes:
        row: the row number as a spreadsheet shows it (the header is row 1); 0 for the file.
        column: the header word of the column at fault, or None for the whole row or file.
        reason_key: message key of the reason in the catalogs (``roster.error.*``).
        context: values for the reason's template.
    """

    row: int
    column: str | None
    reason_key: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RosterRecord:
    """One checked row: a person, their organization and their roles."""

    row: int
    org: str
    org_type: OrgType
    name: str
    phone: str
    category: Category | None
    post: str
    roles: tuple[Role, ...]
    rank: str
    #: 通知方式, or None when the file has no such column (the member's setting stays)
    channel: Channel | None = None


@dataclass(frozen=True)
class ParsedRoster:
    """The outcome of checking a file: the records if every row is good, else the errors."""

    records: list[RosterRecord]
    errors: list[RowError]
    #: organization path -> the type the file gives it (leaves and typed inner nodes)
    org_types: dict[str, OrgType] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Tell whether the file may be imported."""
        return not self.errors


@dataclass(frozen=True)
class ImportResult:
    """What an import changed; when ``errors`` is not empty it changed nothing."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    orgs_created: int = 0
    orgs_updated: int = 0
    grants_added: int = 0
    grants_removed: int = 0
    errors: tuple[RowError, ...] = ()
    #: people active before the import
    active_before: int = 0
    #: nothing was written: the counts say what an import would change
    dry_run: bool = False
    #: (name, phone, organization) of the first people deactivated, for a dry run
    deactivated_people: tuple[tuple[str, str, str], ...] = ()
    #: a real import would be refused for deactivating too many (a dry run reports it here)
    refusal: RowError | None = None

    @property
    def ok(self) -> bool:
        """Tell whether the roster was imported (or, in a dry run, could be)."""
        return not self.errors


class RosterFileError(Exception):
    """The file as a whole cannot be read as a roster."""

    def __init__(self, key: str, **context: Any) -> None:
        super().__init__(key)
        self.key = key
        self.context = context


# -- reading files ------------------------------------------------------------------------------


def read_rows(path: Path | str) -> tuple[Iterator[list[Any]], int]:
    """Open a roster file and return its rows (header first) and an estimate of their count.

    Raises:
        RosterFileError: the file is missing or is neither CSV nor xlsx.
    """
    path = Path(path)
    if not path.is_file():
        raise RosterFileError(_ERR + "file_missing", path=str(path))
    with path.open("rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"PK\x03\x04"):
        return _xlsx_rows(path)
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise RosterFileError(_ERR + "file_xls")
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        raise RosterFileError(_ERR + "file_format")
    return _csv_rows(path), _count_lines(path)


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
    return count + 1


def _csv_rows(path: Path) -> Iterator[list[Any]]:
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        try:
            for row in csv.reader(fh):
                # an apostrophe put in front of formula-like text (ours, or Excel's "save as
                # CSV") is not part of the value
                yield [sheet_cells.plain(cell) for cell in row]
        except UnicodeDecodeError as exc:
            raise RosterFileError(_ERR + "file_not_utf8") from exc
        except csv.Error as exc:
            raise RosterFileError(_ERR + "file_format") from exc


def _xlsx_rows(path: Path) -> tuple[Iterator[list[Any]], int]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise RosterFileError(_ERR + "file_unreadable") from exc
    if not workbook.worksheets:
        workbook.close()
        raise RosterFileError(_ERR + "file_empty", expected=_allowed(HEADER))
    sheet = workbook.worksheets[0]

    def rows() -> Iterator[list[Any]]:
        try:
            for row in sheet.iter_rows(values_only=True):
                yield list(row)
        finally:
            workbook.close()

    return rows(), sheet.max_row or 0


def write_roster(path: Path | str, rows: Iterable[Sequence[str]]) -> int:
    """Write roster rows (without header) as CSV with BOM or as xlsx, by the file's suffix."""
    path = Path(path)
    count = 0
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("花名册")
        sheet.append(list(HEADER))

        def text_cell(value: str):
            if not sheet_cells.risky(value):
                return value
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # text, never a formula
            cell.quotePrefix = True
            return cell

        for row in rows:
            sheet.append([text_cell(str(v)) for v in row])
            count += 1
        workbook.save(path)
        return count
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow([sheet_cells.neutral(str(v)) for v in row])
            count += 1
    return count


# -- checking rows (pure) -----------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _allowed(words: Iterable[str]) -> str:
    return "、".join(words)


def _codes(value: str) -> Iterator[tuple[str, str]]:
    for c in value:
        yield f"U+{ord(c):04X}", c


class _RowChecker:
    """Check rows one by one, remembering what later rows must agree with."""

    def __init__(self, columns: dict[str, int]) -> None:
        self.columns = columns
        self.errors: list[RowError] = []
        self.records: list[RosterRecord] = []
        self.phone_rows: dict[str, int] = {}
        self.org_types: dict[str, OrgType] = {}
        self.org_type_rows: dict[str, tuple[int, str]] = {}
        self.strings: dict[str, str] = {}

    def _get(self, cells: list[Any], key: str) -> str:
        index = self.columns.get(key)
        if index is None or index >= len(cells):
            return ""
        value = _cell(cells[index])
        return value if value.isascii() else unicodedata.normalize("NFC", value)

    def _unsafe(self, row: int, key: str, value: str) -> bool:
        chars = unsafe_chars(value)
        if chars:
            # quoted with the characters spelled out: a bidi override would turn the line around
            shown = "".join(f"<{code}>" if code in chars else c for code, c in _codes(value))
            self._fail(row, key, f"{key}_unsafe", chars=" ".join(chars), value=shown)
        return bool(chars)

    def _fail(self, row: int, key: str, reason: str, **context: Any) -> None:
        self.errors.append(RowError(row, HEADERS[key], _ERR + reason, context))

    def _share(self, value: str) -> str:
        # Many rows repeat the same organization or post: keep one copy of each string.
        return self.strings.setdefault(value, value)

    def check(self, row: int, cells: list[Any]) -> None:
        """Check one data row; record it if good, else add its errors."""
        before = len(self.errors)
        org = self._org(row, self._get(cells, "org"))
        org_type = self._org_type(row, self._get(cells, "org_type"))
        name = self._get(cells, "name")
        if not name:
            self._fail(row, "name", "name_empty")
        elif len(name) > NAME_MAX:
            self._fail(row, "name", "name_too_long", limit=NAME_MAX, value=name)
        else:
            self._unsafe(row, "name", name)
        phone = self._phone(row, self._get(cells, "phone"))
        roles = self._roles(row, self._get(cells, "roles"))
        category = self._category(row, self._get(cells, "category"), roles)
        post = self._get(cells, "post")
        if len(post) > POST_MAX:
            self._fail(row, "post", "post_too_long", limit=POST_MAX)
        else:
            self._unsafe(row, "post", post)
        rank = self._get(cells, "rank")
        if len(rank) > RANK_MAX:
            self._fail(row, "rank", "rank_too_long", limit=RANK_MAX)
        else:
            self._unsafe(row, "rank", rank)
        channel = self._channel(row, self._get(cells, "channel"))
        if org is not None and org_type is not None:
            self._agree_on_type(row, org, org_type, self._get(cells, "org_type"))
        if len(self.errors) > before:
            return
        assert org is not None and org_type is not None and phone is not None
        self.records.append(
            RosterRecord(
                row=row,
                org=org,
                org_type=org_type,
                name=name,
                phone=phone,
                category=category,
                post=self._share(post),
                roles=roles,
                rank=self._share(rank),
                channel=channel,
            )
        )

    def _channel(self, row: int, raw: str) -> Channel | None:
        if "channel" not in self.columns:
            return None  # an older roster: nobody's setting changes
        if not raw:
            return Channel.AUTO
        channel = parse_channel(raw)
        if channel not in OFFICE_CHANNELS:
            shown = lexicon("channels")[SHOWN_CHANNEL_WORDS]
            self._fail(row, "channel", "channel_invalid", value=raw, allowed=_allowed(shown))
            return None
        return channel

    def _org(self, row: int, raw: str) -> str | None:
        if not raw:
            self._fail(row, "org", "org_empty", example=EXAMPLE_ORG_PATH)
            return None
        cached = self.strings.get(raw)
        if cached is not None and cached in self.org_types:
            return cached
        for sep in PATH_SEPARATORS[1:]:
            raw = raw.replace(sep, PATH_SEPARATORS[0])
        parts = [part.strip() for part in raw.strip().strip("/").split("/")]
        if not all(parts):
            self._fail(row, "org", "org_path_invalid", value=raw, example=EXAMPLE_ORG_PATH)
            return None
        for part in parts:
            if len(part) > ORG_NAME_MAX:
                self._fail(row, "org", "org_name_too_long", value=part, limit=ORG_NAME_MAX)
                return None
            if part in DOT_SEGMENTS:
                self._fail(row, "org", "org_dot_segment", value=raw)
                return None
            if self._unsafe(row, "org", part):
                return None
        full = "/".join(parts)
        if len(parts) > ORG_DEPTH_MAX or len(full) > ORG_PATH_MAX:
            self._fail(row, "org", "org_path_too_long", levels=ORG_DEPTH_MAX, limit=ORG_PATH_MAX)
            return None
        return self._share(full)

    def _org_type(self, row: int, raw: str) -> OrgType | None:
        org_type = ORG_TYPE_WORDS.get(raw)
        if org_type is None:
            self._fail(
                row, "org_type", "org_type_invalid", value=raw, allowed=_allowed(ORG_TYPE_WORDS)
            )
        return org_type

    def _agree_on_type(self, row: int, org: str, org_type: OrgType, word: str) -> None:
        first = self.org_type_rows.get(org)
        if first is None:
            self.org_type_rows[org] = (row, word)
            self.org_types[org] = org_type
        elif self.org_types[org] is not org_type:
            self._fail(
                row,
                "org_type",
                "org_type_conflict",
                org=org,
                value=word,
                first_row=first[0],
                first_type=first[1],
            )

    def _phone(self, row: int, raw: str) -> str | None:
        if not raw:
            self._fail(row, "phone", "phone_empty")
            return None
        phone = normalize_phone(raw)
        if phone is None:
            self._fail(row, "phone", "phone_invalid", value=raw)
            return None
        first = self.phone_rows.setdefault(phone, row)
        if first != row:
            self._fail(row, "phone", "phone_duplicate", value=phone, first_row=first)
            return None
        return phone

    def _roles(self, row: int, raw: str) -> tuple[Role, ...]:
        for sep in ROLE_SEPARATORS[1:]:
            raw = raw.replace(sep, ROLE_SEPARATORS[0])
        words = [word.strip() for word in raw.split(ROLE_SEPARATORS[0]) if word.strip()]
        if not words:
            self._fail(row, "roles", "roles_empty", allowed=_allowed(ROLE_WORDS))
            return ()
        roles: list[Role] = []
        for word in words:
            role = ROLE_WORDS.get(word)
            if role is None:
                self._fail(row, "roles", "role_invalid", value=word, allowed=_allowed(ROLE_WORDS))
            elif role not in roles:
                roles.append(role)
        return tuple(roles)

    def _category(self, row: int, raw: str, roles: tuple[Role, ...]) -> Category | None:
        if not raw:
            if ROLES_NEEDING_CATEGORY.intersection(roles):
                self._fail(row, "category", "category_required", allowed=_allowed(CATEGORY_WORDS))
            return None
        category = CATEGORY_WORDS.get(raw)
        if category is None:
            self._fail(
                row, "category", "category_invalid", value=raw, allowed=_allowed(CATEGORY_WORDS)
            )
        return category


def _header_columns(header: Sequence[Any]) -> tuple[dict[str, int], list[RowError]]:
    by_word = {word: key for key, word in HEADERS.items()}
    columns: dict[str, int] = {}
    errors: list[RowError] = []
    for index, value in enumerate(header):
        key = by_word.get(_cell(value))
        if key is None:
            continue  # unknown extra columns are ignored
        if key in columns:
            errors.append(RowError(1, HEADERS[key], _ERR + "column_duplicate", {}))
        columns.setdefault(key, index)
    expected = _allowed(HEADER)
    for key, word in HEADERS.items():
        if key not in columns and key not in OPTIONAL_COLUMNS:
            errors.append(RowError(1, word, _ERR + "column_missing", {"expected": expected}))
    return columns, errors


def validate_rows(
    rows: Iterable[Sequence[Any]], progress: Progress | None = None, total: int = 0
) -> ParsedRoster:
    """Check roster rows (the header first) and return the records or every error."""
    iterator = iter(rows)
    header = next(iterator, None)
    if header is None or not any(_cell(v) for v in header):
        empty = RowError(0, None, _ERR + "file_empty", {"expected": _allowed(HEADER)})
        return ParsedRoster([], [empty])
    columns, errors = _header_columns(header)
    if errors:
        return ParsedRoster([], errors)
    checker = _RowChecker(columns)
    row = 1
    for row, cells in enumerate(iterator, start=2):
        if not isinstance(cells, list):
            cells = list(cells)
        if any(_cell(v) for v in cells):
            checker.check(row, cells)
        if progress is not None and row % 1000 == 0:
            progress(row - 1, max(total, row))
    if progress is not None:
        progress(row - 1, row - 1)
    if not checker.records and not checker.errors:
        checker.errors.append(RowError(0, None, _ERR + "no_rows", {}))
    if checker.errors:
        return ParsedRoster([], checker.errors)
    return ParsedRoster(checker.records, [], checker.org_types)


def parse_roster(path: Path | str, progress: Progress | None = None) -> ParsedRoster:
    """Read and check a roster file (CSV or xlsx)."""
    try:
        rows, estimate = read_rows(path)
        return validate_rows(rows, progress, max(estimate - 1, 0))
    except RosterFileError as exc:
        return ParsedRoster([], [RowError(0, None, exc.key, exc.context)])


def format_error(error: RowError, locale: str = DEFAULT_LOCALE) -> str:
    """Render one error as the user reads it: ``第N行 [列] 原因``."""
    messages = catalog()
    reason = messages.render(error.reason_key, locale, **error.context)
    if error.row <= 0:
        return messages.render("roster.file_error_line", locale, reason=reason)
    if error.column is None:
        return messages.render("roster.row_error_line", locale, row=error.row, reason=reason)
    return messages.render(
        "roster.error_line", locale, row=error.row, column=error.column, reason=reason
    )


# -- writing ------------------------------------------------------------------------------------

_org = Org.__table__
_member = Member.__table__
_grant = RoleGrant.__table__


def _prefixes(full_name: str) -> Iterator[str]:
    start = 0
    while (cut := full_name.find("/", start)) != -1:
        yield full_name[:cut]
        start = cut + 1
    yield full_name


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Rollback(Exception):
    """Raised inside the import's transaction to undo it (a refusal, a dry run)."""


def deactivation_refused(count: int, active: int) -> bool:
    """Tell whether deactivating ``count`` of ``active`` people needs ``--allow-deactivate``."""
    return count > DEACTIVATE_MAX or count > active * DEACTIVATE_SHARE


@dataclass
class _Counts:
    active_before: int = 0
    deactivated_people: tuple[tuple[str, str, str], ...] = ()
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    orgs_created: int = 0
    orgs_updated: int = 0
    grants_added: int = 0
    grants_removed: int = 0


async def _sync_orgs(
    conn: AsyncConnection, org_types: dict[str, OrgType], counts: _Counts
) -> dict[str, int]:
    """Create the missing organizations level by level; return full name -> id."""
    known: dict[str, tuple[int, OrgType, str]] = {
        full: (oid, OrgType(kind), path)
        for oid, full, kind, path in await conn.execute(
            select(_org.c.id, _org.c.full_name, _org.c.type, _org.c.path)
        )
    }
    needed: set[str] = set()
    for full in org_types:
        needed.update(_prefixes(full))

    retype = [
        {"b_id": known[full][0], "b_type": org_types[full]}
        for full in org_types
        if full in known and known[full][1] is not org_types[full]
    ]
    if retype:
        await conn.execute(
            update(_org).where(_org.c.id == bindparam("b_id")).values(type=bindparam("b_type")),
            retype,
        )
        counts.orgs_updated = len(retype)

    by_depth: dict[int, list[str]] = {}
    for full in needed:
        if full not in known:
            by_depth.setdefault(full.count("/"), []).append(full)
    for depth in sorted(by_depth):
        names = sorted(by_depth[depth])
        params = []
        for full in names:
            parent, _, name = full.rpartition("/")
            params.append(
                {
                    "name": name,
                    "full_name": full,
                    "type": org_types.get(full, OrgType.LEVEL),
                    "parent_id": known[parent][0] if parent else None,
                    "path": "",
                    "depth": depth,
                }
            )
        created = await conn.execute(insert(_org).returning(_org.c.id, _org.c.full_name), params)
        paths = []
        for oid, full in created.all():
            parent = full.rpartition("/")[0]
            path = f"{known[parent][2] if parent else '/'}{oid}/"
            known[full] = (oid, org_types.get(full, OrgType.LEVEL), path)
            paths.append({"b_id": oid, "b_path": path})
        await conn.execute(
            update(_org).where(_org.c.id == bindparam("b_id")).values(path=bindparam("b_path")),
            paths,
        )
        counts.orgs_created += len(names)
    return {full: entry[0] for full, entry in known.items()}


_MEMBER_UPDATE = (
    update(_member)
    .where(_member.c.id == bindparam("b_id"))
    .values(
        name=bindparam("b_name"),
        org_id=bindparam("b_org_id"),
        category=bindparam("b_category"),
        post=bindparam("b_post"),
        rank=bindparam("b_rank"),
        channel=bindparam("b_channel"),
        channel_by=bindparam("b_channel_by"),
        active=True,
        updated_at=bindparam("b_updated_at"),
    )
)


def _channel_of(rec: RosterRecord, old: tuple[Any, ...] | None) -> tuple[Channel, ChannelBy]:
    """Return a person's channel after the import: the file's, unless they chose one themselves.

    A roster without the 通知方式 column leaves everyone's setting as it was; a person's own
    choice (an opt-out included) is never overwritten by the office's file.
    """
    if old is not None:
        kept = (Channel(old[7]), ChannelBy(old[8]))
        if rec.channel is None or kept[1] is ChannelBy.PERSON:
            return kept
    channel = rec.channel or Channel.AUTO
    return channel, ChannelBy.DEFAULT if channel is Channel.AUTO else ChannelBy.OFFICE


async def _delete_ids(conn: AsyncConnection, table, ids: list[int]) -> None:
    for part in _chunks(ids, IN_CHUNK):
        await conn.execute(delete(table).where(table.c.id.in_(part)))


async def _write(
    conn: AsyncConnection,
    parsed: ParsedRoster,
    progress: Progress | None,
    *,
    allow_deactivate: bool = True,
    dry_run: bool = False,
) -> _Counts:
    counts = _Counts()

    # Preloads are streamed so that the driver's buffer and our dicts do not both hold them.
    existing: dict[str, tuple[Any, ...]] = {}
    member_cols = (
        _member.c.id,
        _member.c.name,
        _member.c.org_id,
        _member.c.category,
        _member.c.post,
        _member.c.rank,
        _member.c.active,
        _member.c.channel,
        _member.c.channel_by,
    )
    rows = await conn.stream(select(_member.c.phone, *member_cols))
    async for part in rows.partitions(IN_CHUNK * 10):
        for phone, *fields in part:
            existing[phone] = tuple(fields)
    # Who would be deactivated is known before anything is written: a file that drops many
    # people (a truncated export, the wrong county's sheet) is refused before it touches a row.
    counts.active_before = sum(1 for old in existing.values() if old[6])
    listed = {rec.phone for rec in parsed.records}
    leaving = [(phone, old) for phone, old in existing.items() if old[6] and phone not in listed]
    refused = deactivation_refused(len(leaving), counts.active_before)
    if refused and not allow_deactivate and not dry_run:
        counts.deactivated = len(leaving)
        raise _Rollback(counts)
    if dry_run and leaving:
        names = dict((await conn.execute(select(_org.c.id, _org.c.full_name))).all())
        counts.deactivated_people = tuple(
            (old[1], phone, names.get(old[2], "")) for phone, old in leaving[:DRY_RUN_LIST]
        )
    org_ids = await _sync_orgs(conn, parsed.org_types, counts)
    # (member, role, org) -> grant id; whatever is left at the end is no longer granted.
    held: dict[tuple[int, Role, int], int] = {}
    if existing:
        rows = await conn.stream(
            select(_grant.c.id, _grant.c.member_id, _grant.c.role, _grant.c.org_id)
        )
        async for part in rows.partitions(IN_CHUNK * 10):
            for gid, mid, role, org_id in part:
                held[(mid, Role(role), org_id)] = gid

    now = utcnow()
    done = 0
    for chunk in _chunks(parsed.records, CHUNK):
        fresh: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        ids: dict[str, int] = {}
        for rec in chunk:
            org_id = org_ids[rec.org]
            old = existing.pop(rec.phone, None)
            channel, channel_by = _channel_of(rec, old)
            if old is None:
                fresh.append(
                    {
                        "name": rec.name,
                        "phone": rec.phone,
                        "org_id": org_id,
                        "category": rec.category,
                        "post": rec.post,
                        "rank": rec.rank,
                        "active": True,
                        "updated_at": now,
                        "channel": channel,
                        "channel_by": channel_by,
                    }
                )
                continue
            ids[rec.phone] = old[0]
            new = (rec.name, org_id, rec.category, rec.post, rec.rank, True, channel, channel_by)
            if old == (old[0], *new):
                counts.unchanged += 1
                continue
            counts.updated += 1
            changed.append(
                {
                    "b_id": old[0],
                    "b_name": rec.name,
                    "b_org_id": org_id,
                    "b_category": rec.category,
                    "b_post": rec.post,
                    "b_rank": rec.rank,
                    "b_channel": channel,
                    "b_channel_by": channel_by,
                    "b_updated_at": now,
                }
            )
        if fresh:
            result = await conn.execute(
                insert(_member).returning(_member.c.id, _member.c.phone), fresh
            )
            ids.update((phone, mid) for mid, phone in result.all())
            counts.created += len(fresh)
        if changed:
            await conn.execute(_MEMBER_UPDATE, changed)

        add: list[dict[str, Any]] = []
        for rec in chunk:
            mid = ids[rec.phone]
            org_id = org_ids[rec.org]
            for role in rec.roles:
                if held.pop((mid, role, org_id), None) is None:
                    add.append({"member_id": mid, "role": role, "org_id": org_id})
        if add:
            await conn.execute(insert(_grant), add)
            counts.grants_added += len(add)
        done += len(chunk)
        if progress is not None:
            progress(done, len(parsed.records))

    # People missing from the new file stay (their pledges are history) but are inactive and
    # hold no roles, so that nothing they could do before survives on a stale grant.
    gone = [old[0] for old in existing.values() if old[6]]
    for part in _chunks(gone, IN_CHUNK):
        await conn.execute(
            update(_member).where(_member.c.id.in_(part)).values(active=False, updated_at=now)
        )
    counts.deactivated = len(gone)
    if held:
        await _delete_ids(conn, _grant, list(held.values()))
        counts.grants_removed = len(held)
    return counts


async def import_parsed(
    store: Store,
    parsed: ParsedRoster,
    progress: Progress | None = None,
    *,
    allow_deactivate: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Write checked roster records in one transaction; refuse if the roster has errors.

    A re-import that would deactivate more than 10% of the active people, or more than 20, is
    refused unless ``allow_deactivate``. ``dry_run`` works out every change and writes none.
    """
    if parsed.errors:
        return ImportResult(rows=len(parsed.records), errors=tuple(parsed.errors))
    try:
        async with store.write() as session:
            conn = await session.connection()
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
                )
            counts = await _write(
                conn, parsed, progress, allow_deactivate=allow_deactivate, dry_run=dry_run
            )
            if dry_run:
                raise _Rollback(counts)
    except _Rollback as undone:
        counts = undone.args[0]
        refusal = None
        if not allow_deactivate and deactivation_refused(counts.deactivated, counts.active_before):
            refusal = RowError(
                0,
                None,
                _ERR + "too_many_deactivated",
                {"count": counts.deactivated, "active": counts.active_before},
            )
        fields = dataclasses.asdict(counts)
        if not dry_run:
            assert refusal is not None
            return ImportResult(rows=len(parsed.records), errors=(refusal,), **fields)
        return ImportResult(rows=len(parsed.records), dry_run=True, refusal=refusal, **fields)
    return ImportResult(rows=len(parsed.records), **dataclasses.asdict(counts))


async def import_roster(
    store: Store,
    path: Path | str,
    progress: Progress | None = None,
    *,
    allow_deactivate: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Read, check and import a roster file: all of it, or nothing and every error."""

    def reading(done: int, total: int) -> None:
        if progress is not None:
            progress(done, 2 * total)

    parsed = parse_roster(path, reading if progress is not None else None)
    if not parsed.ok:
        return ImportResult(errors=tuple(parsed.errors))
    rows = len(parsed.records)
    return await import_parsed(
        store,
        parsed,
        (lambda done, _total: progress(rows + done, 2 * rows)) if progress is not None else None,
        allow_deactivate=allow_deactivate,
        dry_run=dry_run,
    )


def render_summary(result: ImportResult, locale: str = DEFAULT_LOCALE) -> str:
    """Render the one-line summary of a successful import."""
    return catalog().render(
        "roster.summary",
        locale,
        rows=result.rows,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        deactivated=result.deactivated,
        orgs_created=result.orgs_created,
    )


def iter_errors(errors: Iterable[RowError], locale: str = DEFAULT_LOCALE) -> Iterator[str]:
    """Render errors one per line, in file order."""
    for error in sorted(errors, key=lambda e: e.row):
        yield format_error(error, locale)


__all__ = [
    "CATEGORY_WORDS",
    "HEADER",
    "HEADERS",
    "ORG_TYPE_WORDS",
    "ROLE_WORDS",
    "ImportResult",
    "ParsedRoster",
    "Progress",
    "RosterRecord",
    "RowError",
    "format_error",
    "import_parsed",
    "import_roster",
    "iter_errors",
    "parse_roster",
    "read_rows",
    "render_summary",
    "validate_rows",
    "write_roster",
]
