"""Quality checks of a draft pledge (SPEC Q1–Q4, S2): pure functions, no I/O.

The notice (三、进一步加强领导) names the faults that recur in pledges; each check maps to one:

- **Q4 操作性** — 有明确目标、有具体项目、有管用措施、有完成时限. A missing content, goal,
  measures or deadline, a deadline outside the campaign, or an unfilled placeholder of the basic
  pledge BLOCKs submission. A goal that is present but cannot be checked only WARNs: vagueness is
  a judgement the reviewer makes, absence is not.
- **Q2 实践性** — 不喊空洞口号: ``slogan`` (WARN).
- **Q1 先进性** — 防止把承诺等同于一般性的工作和纪律要求: ``ordinary_duty`` (WARN).
- **Q3 针对性** — 避免雷同: ``near_duplicate`` against other pledges, ``duplicate_within`` between
  items of the same pledge (WARN).
- **S2** — a village or community organization's pledge contains the basic pledge
  (``missing_basic``, BLOCK); ``basic_items`` pre-fills it from the catalogs.

A finding carries a code and a JSON-friendly context; ``quality.<code>`` in the catalogs explains
it to the drafter, ``quality.<code>_reviewer`` (where it exists) to the reviewer. The phrase
tuples below are detection data, not UI text: extend them as real pledges show new patterns, and
add the example to the tests.

What each check reads: ``ordinary_duty`` and the slogan score read the content only (a precise
goal does not make paying Party dues exemplary); the slogan finding is vetoed by any concrete
marker in content or goal; near-duplicates compare ``comparable_text`` (content and goal).
Basic items (``basic=True``) get the form checks (Q4, sizes, placeholders) but not Q1–Q3: their
words are prescribed, the same in every village. The detection data is Chinese; a pledge written
in English gets the form checks and goal markers (``ENGLISH_MARKERS``) but no slogan or duty check.

Thresholds, and why:

- ``NEAR_DUPLICATE_THRESHOLD = 0.6`` on the set cosine (Ochiai) of character bigrams + trigrams
  of the normalized text. Cosine rather than Jaccard because a copied item with a clause added
  stays above 0.6 (A ⊂ B with |B| = 2|A| gives cosine 0.71, Jaccard 0.5). On the test examples,
  copies with other numbers, punctuation or word order score 0.69–1.0; items on the same topic
  written independently score 0.1–0.55.
- ``MIN_MEASURES_CHARS = 6``: fewer letters than 6 is a phrase (认真落实, 加强学习), not a measure.
- ``MIN_GOAL_CHARS = 2``: a one-character goal (无, 好) is no goal.
- ``SLOGAN_THRESHOLD = 0.5`` on ``0.5·coverage + 0.3·idiom density + 0.2·min(hits, 2)/2``
  (coverage: share of letters inside slogan phrases; idiom density: share inside four-character
  clauses), and only when the item has no concrete marker at all (number, time, place or group of
  people). One slogan phrase covering the whole content scores ≥ 0.6; a chain of four-character
  clauses alone scores 0.3 (修建村道，硬化路面 is not a slogan) but passes 0.5 with one known
  slogan phrase among three clauses; one slogan beside an equal concrete half scores about 0.4.
- ``ORDINARY_RESIDUAL_MAX = 3``: an item is ordinary duty when duty phrases match and at most
  3 letters remain once they and filler words (我, 认真, 按时 …) are removed.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Protocol

from models.org import OrgType
from templates.lexicon import lexicon

# --------------------------------------------------------------------------- thresholds

NEAR_DUPLICATE_THRESHOLD = 0.6
MIN_MEASURES_CHARS = 6
MIN_GOAL_CHARS = 2
SLOGAN_THRESHOLD = 0.5
SLOGAN_WEIGHT_COVERAGE = 0.5
SLOGAN_WEIGHT_IDIOMS = 0.3
SLOGAN_WEIGHT_HITS = 0.2
ORDINARY_RESIDUAL_MAX = 3

#: Column sizes of ``PledgeItem`` (checked against the model by the tests).
FIELD_LIMITS: dict[str, int] = {"content": 2000, "goal": 1000, "measures": 2000}

# --------------------------------------------------------------------------- detection data
# The word lists are data: templates/lexicon/<locale>/quality.toml (Chinese phrases and patterns
# in zh_CN, the English markers in en).

_WORDS = lexicon("quality")

#: Chinese numerals, counted as numbers when a measure word follows.
CN_NUMERALS = "".join(_WORDS["numerals"])
#: Words that make a percentage (百分之).
PERCENT_WORDS: tuple[str, ...] = _WORDS["percent_words"]
#: Measure words and units (量词).
MEASURE_WORDS: tuple[str, ...] = _WORDS["measure_words"]
#: Fixed phrases whose numerals count nothing; removed before looking for quantities.
NUMERAL_IDIOMS: tuple[str, ...] = _WORDS["numeral_idioms"]
#: Time and frequency (regular expressions).
TIME_PATTERNS: tuple[str, ...] = _WORDS["time_patterns"]
#: A clear completion criterion for a goal (regular expressions).
COMPLETION_PATTERNS: tuple[str, ...] = _WORDS["completion_patterns"]
#: The same markers for a pledge written in English (matched on whole words, any case).
ENGLISH_MARKERS: tuple[str, ...] = _WORDS["english_markers"]
#: Concrete places and groups of people, for the slogan check (regular expressions).
CONCRETE_PATTERNS: tuple[str, ...] = _WORDS["concrete_patterns"]
#: Slogans: general words that say nothing concrete, the notice's own headings included.
SLOGAN_PATTERNS: tuple[str, ...] = _WORDS["slogan_patterns"]
#: Ordinary duty and discipline that every member owes anyway (the notice's Q1 fault).
ORDINARY_DUTY_PATTERNS: tuple[str, ...] = _WORDS["ordinary_duty_patterns"]
#: Words that add nothing to a duty: removed before measuring what is left of an item.
FILLER_PATTERNS: tuple[str, ...] = _WORDS["filler_patterns"]

#: A placeholder the secretary must replace in a basic item: 【村干部坐班天数】.
PLACEHOLDER_RE = re.compile(r"【([^】]{1,40})】")


def _alternation(patterns: Iterable[str]) -> re.Pattern[str]:
    # Longest first, so that a regex alternation prefers 全心全意为人民服务 to 全心全意.
    return re.compile("|".join(f"(?:{p})" for p in sorted(patterns, key=len, reverse=True)))


_MEASURE = "|".join(sorted(MEASURE_WORDS, key=len, reverse=True))
_CN_QUANTITY_RE = re.compile(f"[{CN_NUMERALS}]+(?={_MEASURE})")
_PERCENT = "|".join(re.escape(w) for w in PERCENT_WORDS)
_QUANTITY_RE = re.compile(rf"\d|[%‰]|{_PERCENT}|[{CN_NUMERALS}]+(?:{_MEASURE})")
_NUMERAL_IDIOM_RE = _alternation(re.escape(p) for p in NUMERAL_IDIOMS)
_TIME_RE = _alternation(TIME_PATTERNS)
_COMPLETION_RE = _alternation(COMPLETION_PATTERNS)
_CONCRETE_RE = _alternation(CONCRETE_PATTERNS)
_ENGLISH_RE = re.compile(
    r"\b(?:" + "|".join(re.escape(w) for w in ENGLISH_MARKERS) + r")\b", re.IGNORECASE
)
_SLOGAN_RE = _alternation(SLOGAN_PATTERNS)
_DUTY_RE = _alternation(ORDINARY_DUTY_PATTERNS)
_FILLER_RE = _alternation(FILLER_PATTERNS)
_DIGITS_RE = re.compile(r"\d+(?:[.,]\d+)*")
_SPACE_RE = re.compile(r"\s+")
_CLAUSE_SPLIT_RE = re.compile(r"[^\w]+|_+")

# --------------------------------------------------------------------------- findings


class Severity(StrEnum):
    """How a finding weighs: BLOCK stops submission; WARN is advice the reviewer also sees."""

    BLOCK = "block"
    WARN = "warn"


#: code -> (rule of the notice or SPEC, severity), in the order findings are listed.
CODES: dict[str, tuple[str | None, Severity]] = {
    "no_items": ("Q4", Severity.BLOCK),
    "missing_basic": ("S2", Severity.BLOCK),
    "too_long": (None, Severity.BLOCK),
    "no_content": ("Q4", Severity.BLOCK),
    "no_goal": ("Q4", Severity.BLOCK),
    "no_measures": ("Q4", Severity.BLOCK),
    "no_deadline": ("Q4", Severity.BLOCK),
    "deadline_outside_campaign": ("Q4", Severity.BLOCK),
    "unfilled_placeholder": ("Q4", Severity.BLOCK),
    "goal_not_checkable": ("Q4", Severity.WARN),
    "ordinary_duty": ("Q1", Severity.WARN),
    "slogan": ("Q2", Severity.WARN),
    "near_duplicate": ("Q3", Severity.WARN),
    "duplicate_within": ("Q3", Severity.WARN),
}
_CODE_ORDER = {code: i for i, code in enumerate(CODES)}

#: Codes with a reviewer variant of the message (``quality.<code>_reviewer``).
REVIEWER_VARIANTS: frozenset[str] = frozenset({"near_duplicate"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem of a draft pledge; ``quality.<code>`` explains it.

    Attributes:
        item_index: 0-based index of the item, or None for the pledge as a whole.
        code: a key of ``CODES``.
        severity: BLOCK or WARN.
        context: JSON-friendly values for the message; ``item`` is the 1-based number shown.
    """

    item_index: int | None
    code: str
    severity: Severity
    context: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def rule(self) -> str | None:
        """Return the rule the finding belongs to (``Q1``–``Q4``, ``S2``), if any."""
        return CODES[self.code][0]

    def message_key(self, *, reviewer: bool = False) -> str:
        """Return the catalog key explaining the finding to the drafter, or to the reviewer."""
        if reviewer and self.code in REVIEWER_VARIANTS:
            return f"quality.{self.code}_reviewer"
        return f"quality.{self.code}"


def blocking(findings: Iterable[Finding]) -> bool:
    """Tell whether any finding stops submission."""
    return any(f.severity is Severity.BLOCK for f in findings)


def _finding(index: int | None, code: str, **context: Any) -> Finding:
    if index is not None:
        context = {"item": index + 1, **context}
    return Finding(index, code, CODES[code][1], context)


# --------------------------------------------------------------------------- inputs


class ItemLike(Protocol):
    """What the checks read of an item: an ``ItemDraft``, a ``PledgeItem`` or the like."""

    @property
    def content(self) -> str: ...  # noqa: D102

    @property
    def goal(self) -> str: ...  # noqa: D102

    @property
    def measures(self) -> str: ...  # noqa: D102

    @property
    def deadline(self) -> date | None: ...  # noqa: D102

    @property
    def basic(self) -> bool: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class ItemDraft:
    """One pledge item as drafted: the fields of ``PledgeItem`` the checks read.

    Attributes:
        basic: a pre-filled item of the basic pledge of a village or community (SPEC S2).
    """

    content: str = ""
    goal: str = ""
    measures: str = ""
    deadline: date | None = None
    vanguard: str | None = None
    basic: bool = False
    standing: bool = False


@dataclass(frozen=True, slots=True)
class OtherText:
    """One item of another pledge, for the near-duplicate check.

    Attributes:
        text: build it with ``comparable_text(item)`` so that both sides compare the same fields.
        basic: the item belongs to the basic pledge; similarity to it says nothing (SPEC S2).
    """

    pledge_id: int
    owner_name: str
    org_id: int
    text: str
    basic: bool = False


# --------------------------------------------------------------------------- text


def _nfkc(text: str | None) -> str:
    return unicodedata.normalize("NFKC", text or "")


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"


def substance_length(text: str | None) -> int:
    """Count the letters and digits of ``text``: what is left without punctuation and spaces."""
    return sum(1 for ch in _nfkc(text) if _is_letter(ch))


def normalize(text: str | None) -> str:
    """Reduce ``text`` for comparison: NFKC, lower case, numbers as ``0``, letters only."""
    text = _nfkc(text).lower()
    text = _CN_QUANTITY_RE.sub("0", text)
    text = _DIGITS_RE.sub("0", text)
    return "".join(ch for ch in text if _is_letter(ch))


def ngrams(text: str | None) -> frozenset[str]:
    """Return the character bigrams and trigrams of the normalized ``text``."""
    norm = normalize(text)
    if len(norm) < 2:
        return frozenset({norm} if norm else ())
    grams = {norm[i : i + 2] for i in range(len(norm) - 1)}
    grams.update(norm[i : i + 3] for i in range(len(norm) - 2))
    return frozenset(grams)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Return the set cosine (Ochiai) of two n-gram sets: |A∩B| / √(|A|·|B|)."""
    if not a or not b:
        return 0.0
    return len(a & b) / math.sqrt(len(a) * len(b))


def comparable_text(item: ItemLike) -> str:
    """Return the text of an item that near-duplicate detection compares: content and goal."""
    return f"{item.content or ''}\n{item.goal or ''}"


def placeholders(text: str | None) -> list[str]:
    """Return the unfilled 【…】 placeholders of a text, in order, without repeats."""
    return list(dict.fromkeys(m.group(1) for m in PLACEHOLDER_RE.finditer(text or "")))


def _compact(text: str | None) -> str:
    return _SPACE_RE.sub("", _nfkc(text))


def has_quantity(text: str | None) -> bool:
    """Tell whether a text names a number, a count, a share or a time."""
    if _ENGLISH_RE.search(_nfkc(text)):
        return True
    text = _NUMERAL_IDIOM_RE.sub("", _compact(text))
    return bool(_QUANTITY_RE.search(text) or _TIME_RE.search(text))


def goal_checkable(goal: str | None) -> bool:
    """Tell whether a goal can be checked: a quantity, a time or a completion criterion."""
    return has_quantity(goal) or bool(_COMPLETION_RE.search(_compact(goal)))


def _is_concrete(text: str) -> bool:
    stripped = _SLOGAN_RE.sub("", _compact(text))
    return has_quantity(stripped) or bool(_CONCRETE_RE.search(stripped))


def slogan_score(content: str | None) -> float:
    """Score how much a content reads as a slogan, from 0 (none) to 1 (nothing else).

    The score weighs the share of letters inside slogan phrases, the share inside
    four-character clauses (爱岗敬业，无私奉献) and the number of slogan phrases (up to two).
    It does not look at concrete markers: ``check_pledge`` vetoes a slogan finding on those.
    """
    compact = _compact(content)
    total = substance_length(compact)
    if total == 0:
        return 0.0
    matches = list(_SLOGAN_RE.finditer(compact))
    covered = sum(substance_length(m.group(0)) for m in matches)
    clauses = [c for c in _CLAUSE_SPLIT_RE.split(compact) if c]
    idioms = sum(len(c) for c in clauses if len(c) == 4)
    score = (
        SLOGAN_WEIGHT_COVERAGE * covered / total
        + SLOGAN_WEIGHT_IDIOMS * idioms / total
        + SLOGAN_WEIGHT_HITS * min(len(matches), 2) / 2
    )
    return min(score, 1.0)


def ordinary_duty_phrases(content: str | None) -> list[str]:
    """Return the duty phrases of a content if it says nothing beyond ordinary duty, else []."""
    compact = _compact(content)
    matches = [m.group(0) for m in _DUTY_RE.finditer(compact)]
    if not matches:
        return []
    residual = _FILLER_RE.sub("", _DUTY_RE.sub("", compact))
    if substance_length(residual) > ORDINARY_RESIDUAL_MAX:
        return []
    return list(dict.fromkeys(matches))


# --------------------------------------------------------------------------- corpus


class CorpusIndex:
    """Other pledges' items with precomputed n-grams and an inverted index on them.

    Build it once per organization and campaign and reuse it across checks. A query probes only
    its rarest n-grams: an entry with cosine ≥ t to a query of n grams shares at least ⌈t²·n⌉
    of them, so it must share one of any n − ⌈t²·n⌉ + 1 (pigeonhole); the rarest have the
    shortest posting lists.
    """

    def __init__(self, texts: Iterable[OtherText]) -> None:
        self.entries: tuple[OtherText, ...] = tuple(texts)
        self._grams = [ngrams(e.text) for e in self.entries]
        postings: defaultdict[str, list[int]] = defaultdict(list)
        for i, grams in enumerate(self._grams):
            for gram in grams:
                postings[gram].append(i)
        self._postings: dict[str, list[int]] = dict(postings)

    def __len__(self) -> int:
        return len(self.entries)

    def most_similar(
        self,
        grams: frozenset[str],
        *,
        threshold: float = NEAR_DUPLICATE_THRESHOLD,
        skip: Callable[[OtherText], bool] | None = None,
    ) -> tuple[OtherText, float] | None:
        """Return the most similar entry at or above ``threshold`` and its score, or None."""
        if not grams or not self.entries:
            return None
        need = max(1, math.ceil(threshold * threshold * len(grams) - 1e-9))
        probe = len(grams) - need + 1
        rarest = sorted(grams, key=lambda g: (len(self._postings.get(g, ())), g))[:probe]
        candidates: set[int] = set()
        for gram in rarest:
            candidates.update(self._postings.get(gram, ()))
        best: tuple[OtherText, float] | None = None
        for i in sorted(candidates):
            entry = self.entries[i]
            if skip is not None and skip(entry):
                continue
            score = similarity(grams, self._grams[i])
            if score >= threshold and (best is None or score > best[1]):
                best = (entry, score)
        return best


# --------------------------------------------------------------------------- checks


def _percent(score: float) -> int:
    return min(100, round(score * 100))


def _check_fields(index: int, item: ItemLike) -> list[Finding]:
    out: list[Finding] = []
    for name, limit in FIELD_LIMITS.items():
        length = len(getattr(item, name) or "")
        if length > limit:
            out.append(_finding(index, "too_long", field=name, limit=limit, length=length))
    if substance_length(item.content) == 0:
        out.append(_finding(index, "no_content"))
    if substance_length(item.goal) < MIN_GOAL_CHARS:
        out.append(_finding(index, "no_goal"))
    elif not goal_checkable(item.goal):
        out.append(_finding(index, "goal_not_checkable"))
    if substance_length(item.measures) < MIN_MEASURES_CHARS:
        out.append(_finding(index, "no_measures", min_chars=MIN_MEASURES_CHARS))
    if item.basic:
        names = placeholders(f"{item.content or ''}{item.goal or ''}{item.measures or ''}")
        if names:
            out.append(_finding(index, "unfilled_placeholder", placeholders=names))
    return out


def _check_deadline(
    index: int, deadline: date | None, earliest: date, latest: date
) -> list[Finding]:
    if deadline is None:
        return [_finding(index, "no_deadline")]
    if earliest <= deadline <= latest:
        return []
    return [
        _finding(
            index,
            "deadline_outside_campaign",
            deadline=deadline.isoformat(),
            earliest=earliest.isoformat(),
            latest=latest.isoformat(),
            reason="before" if deadline < earliest else "after",
        )
    ]


def _check_substance(index: int, item: ItemLike) -> list[Finding]:
    duty = ordinary_duty_phrases(item.content)
    if duty:
        # The slogan advice would repeat the point; the duty advice is the more precise.
        return [_finding(index, "ordinary_duty", phrases=duty)]
    if substance_length(item.content) == 0:
        return []
    score = slogan_score(item.content)
    if score >= SLOGAN_THRESHOLD and not _is_concrete(comparable_text(item)):
        return [_finding(index, "slogan", score=round(score, 2))]
    return []


def check_pledge(
    items: Sequence[ItemLike],
    window: tuple[date, date],
    today: date,
    corpus: CorpusIndex | Iterable[OtherText] = (),
    *,
    own_pledge_id: int | None = None,
    require_basic: bool = False,
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
) -> list[Finding]:
    """Check a draft pledge and return its findings, pledge-wide first, then item by item.

    Args:
        items: the items in their order (``ItemDraft``, ``PledgeItem`` or the like).
        window: the campaign's first and last day; a deadline must fall between
            ``max(today, first day)`` and the last day.
        today: the date of the check.
        corpus: the other pledges' items of the same organization and campaign, or an index of
            them built beforehand. Entries of ``own_pledge_id`` are ignored.
        own_pledge_id: the id of the pledge under check, if it is stored already.
        require_basic: the pledge is a village's or community's own and must contain the basic
            pledge (SPEC S2).
        threshold: the similarity from which two items count as near-duplicates.

    Returns:
        The findings, in a stable order; ``blocking(findings)`` tells whether to refuse.
    """
    findings: list[Finding] = []
    if not items:
        findings.append(_finding(None, "no_items"))
    if require_basic:
        expected = len(BASIC_TOPICS)
        present = sum(1 for item in items if item.basic)
        if present < expected:
            findings.append(
                _finding(None, "missing_basic", expected=expected, missing=expected - present)
            )

    start, end = window
    earliest = max(today, start)
    index = corpus if isinstance(corpus, CorpusIndex) else CorpusIndex(corpus)

    def skip(entry: OtherText) -> bool:
        return entry.basic or (own_pledge_id is not None and entry.pledge_id == own_pledge_id)

    grams = [ngrams(comparable_text(item)) for item in items]
    for i, item in enumerate(items):
        findings.extend(_check_fields(i, item))
        if not getattr(item, "standing", False):  # a standing duty is kept 长期, no deadline
            findings.extend(_check_deadline(i, item.deadline, earliest, end))
        if item.basic:
            continue  # the basic pledge's words are prescribed: Q1–Q3 do not apply
        findings.extend(_check_substance(i, item))
        match = index.most_similar(grams[i], threshold=threshold, skip=skip)
        if match is not None:
            other, score = match
            findings.append(
                _finding(
                    i,
                    "near_duplicate",
                    percent=_percent(score),
                    similarity=round(score, 3),
                    pledge_id=other.pledge_id,
                    owner_name=other.owner_name,
                    org_id=other.org_id,
                )
            )
        findings.extend(_check_within(i, items, grams, threshold))

    findings.sort(
        key=lambda f: (-1 if f.item_index is None else f.item_index, _CODE_ORDER[f.code])
    )
    return findings


def _check_within(
    j: int, items: Sequence[ItemLike], grams: list[frozenset[str]], threshold: float
) -> list[Finding]:
    best: tuple[int, float] | None = None
    for i in range(j):
        if items[i].basic and items[j].basic:
            continue
        score = similarity(grams[i], grams[j])
        if score >= threshold and (best is None or score > best[1]):
            best = (i, score)
    if best is None:
        return []
    return [_finding(j, "duplicate_within", other_item=best[0] + 1, percent=_percent(best[1]))]


# --------------------------------------------------------------------------- basic pledge

#: The three items of the basic pledge (SPEC S2), in order; catalog keys
#: ``basic_pledge.<village|community>.<topic>.<content|goal|measures>``.
BASIC_TOPICS: tuple[str, ...] = ("affairs", "on_duty", "phones")

_BASIC_KINDS: dict[OrgType, str] = {OrgType.VILLAGE: "village", OrgType.COMMUNITY: "community"}


def basic_items(
    org_type: OrgType | str, render: Callable[[str], str], *, deadline: date | None = None
) -> list[ItemDraft]:
    """Return the pre-filled basic pledge of a village or community, or [] for other types.

    ``render(key)`` turns a catalog key into text in the drafter's language. The goal and
    measures carry 【…】 placeholders (duty days, phone numbers) that the secretary replaces;
    ``check_pledge`` blocks while any is left.
    """
    kind = _BASIC_KINDS.get(OrgType(org_type))
    if kind is None:
        return []
    return [
        ItemDraft(
            content=render(f"basic_pledge.{kind}.{topic}.content"),
            goal=render(f"basic_pledge.{kind}.{topic}.goal"),
            measures=render(f"basic_pledge.{kind}.{topic}.measures"),
            deadline=deadline,
            basic=True,
        )
        for topic in BASIC_TOPICS
    ]
