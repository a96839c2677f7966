"""What every document shares: labels in the reader's language, periods, file names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from campaign import files
from models.campaign import Campaign
from templates import catalog

FORMS = (1, 2, 3, 4, 5, 6, 7)
#: forms that are spreadsheets; the others are Word documents
SHEETS = (3, 4, 5)


class Labels:
    """Render catalog keys of one locale; each distinct key and context is rendered once."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self._cat = catalog()
        self._cache: dict[tuple, str] = {}

    def __call__(self, key: str, **context) -> str:
        """Return the text of ``key`` in this locale."""
        cache_key = (key, tuple(sorted(context.items())))
        text = self._cache.get(cache_key)
        if text is None:
            text = self._cache[cache_key] = self._cat.render(key, self.locale, **context)
        return text

    def form(self, n: int) -> str:
        """Return the full name of attachment ``n``."""
        return self(f"doc.form.{n}")

    def month(self, key: str) -> str:
        """Return a month column's label (``2027-05`` → 5月)."""
        return self("doc.month", m=int(key[5:7]))


@dataclass(frozen=True)
class Period:
    """The time a document speaks of: a month, or "as of" a day."""

    today: date
    month: str

    @property
    def label(self) -> str:
        """Return the month key (``2027-05``)."""
        return self.month


def campaign_months(campaign: Campaign) -> list[str]:
    """Return the month keys of a campaign, from its start to its end."""
    out = []
    y, m = campaign.starts_on.year, campaign.starts_on.month
    while (y, m) <= (campaign.ends_on.year, campaign.ends_on.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def file_name(labels: Labels, form: int | str, **context) -> str:
    """Return the file name of a form, with no character a file system refuses."""
    return files.file_name(labels.locale, form, **context)


def local_stamp(campaign: Campaign, now: datetime) -> str:
    """Return a time stamp in the campaign's time zone, to the minute."""
    return now.astimezone(ZoneInfo(campaign.timezone)).strftime("%Y-%m-%d %H:%M")
