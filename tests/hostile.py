"""A hostile corpus: what careless, clever or broken clients send a chat bot.

``corpus()`` returns at least 500 distinct strings: overlong text, every Unicode trap the
normalizer handles (controls, ANSI escapes, zero-width and invisible characters, bidi overrides,
lone surrogates, NUL, decomposed forms, separators), HTML/Markdown and template syntax, SQL-ish
text, dates out of range, numbers at the edges and forged deep-link payloads. Built
deterministically: the same list every run.
"""

from __future__ import annotations

import itertools

#: one character each of every trap family
TRAP_CHARS = (
    "\x00",
    "\x01",
    "\x07",
    "\x08",
    "\x0b",
    "\x0c",
    "\r",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9b",
    "\u00ad",
    "\u034f",
    "\u061c",
    "\u115f",
    "\u180e",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u2028",
    "\u2029",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2060",
    "\u2061",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u3164",
    "\ufeff",
    "\ufff9",
    "\U000e0001",
    "\U000e0041",
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
)

UNICODE = [
    "\x1b[31m红色\x1b[0m",
    "\x1b[2J\x1b[H清屏",
    "\x1b]0;title\x07",
    "\u202e4202-21-9999",
    "\u202egpj.exe",
    "\u2066\u2067\u2068隔离\u2069",
    "\u200b",
    "\u200b\u200c\u200d\u2060\ufeff",
    "\u3164\u3164",
    "\u115f",
    "\u00a0\u3000 \t\n",
    "e\u0301",
    "e" + "\u0301" * 300,
    "\u1100\u1161\u11a8",
    "Å",
    "\ufb01",
    "１３８０００００００１",
    "１２月３１日",
    "٢٠٢٦-٠٦-٣٠",
    "👨\u200d👩\u200d👧",
    "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
    "\ud83d",
    "\ude00",
    "\ud83d\ude00",
    "a\x00b",
    "\x00" * 10,
    "\r\n\r\n",
    "一\u2028二\u2029三",
    "\U0010ffff",
    "\uffff\ufffe",
    "\ue000私用区",
    "Z\u0351\u0352\u0357\u0358\u035b\u035c\u035d\u035e\u035f\u0360\u0361",
]

MARKUP = [
    "<b>粗体</b>",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<a href='tg://user?id=1'>点我</a>",
    "</pre></code>",
    "&lt;&gt;&amp;&#0;",
    "*粗体* _斜体_ `代码`",
    "```\n代码块\n```",
    "[链接](javascript:alert(1))",
    "||剧透||",
    "\\*\\_\\`",
    "# 标题\n- 列表",
    "<tg-spoiler>x</tg-spoiler>",
]

TEMPLATES = [
    "{{ 7*7 }}",
    "{{ config }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% raw %}",
    "{#",
    "${7*7}",
    "#{7*7}",
    "%s%s%s%n",
    "{0}{1}",
    "%(name)s",
    "{}",
    "{{",
    "}}",
]

SQLISH = [
    "'; DROP TABLE member; --",
    '" OR 1=1 --',
    "' OR ''='",
    "1; SELECT pg_sleep(10)",
    "'); DELETE FROM pledge; --",
    "%",
    "_",
    "\\",
    "\\x00",
    "NULL",
    "null",
    "None",
    "true",
    "[]",
    "{}",
    '{"a": 1}',
    "$$",
    "E'\\\\'",
]

DATES = [
    "9999-12-31",
    "0000-00-00",
    "0001-01-01",
    "2026-02-30",
    "2026-13-01",
    "2026-00-10",
    "99999-01-01",
    "1970-01-01",
    "2038-01-19",
    "2100-01-01",
    "2025-12-31",
    "2027-01-01",
    "12月32日",
    "0月0日",
    "13月底",
    "2026年2月30日",
    "2099年底",
    "6/31",
    "-1",
    "1e9",
    "NaN",
    "inf",
    "年底",
    "上半年",
    "明天",
    "2026-06-30\u202e",
    "２０２６－０６－３０",
    "2026-6-30T00:00:00",
    "2026-06-30; DROP TABLE pause",
]

NUMBERS = ["0", "-0", "00000", "99999999999999999999", "-99999999999", "1.5", "0x10", "1_000"]

COMMANDS_AS_TEXT = ["/", "//", "/start", "/pledge@OtherBot", "/cancel 多余", "/ 空", "@all"]

BLANK = ["", " ", "\n", "\t", "\n\n\n", "\u3000", "\u00a0"]

#: /start payloads a forger tries: invite tokens guessed, paths, overlong, injected
DEEP_LINKS = [
    "inv_",
    "inv_AAAAAAAAAAAAAAAA",
    "inv_0000000000000000000000000000000000000000000000000000000000",
    "inv_" + "A" * 100,
    "../../etc/passwd",
    "inv_%00",
    "inv_\x00",
    "inv_\ud800",
    "inv_' OR 1=1 --",
    "grp_-100123",
    "admin",
    "13800000001",
    "+8613800000002",
    "inv_<script>",
    "inv_{{7*7}}",
    "a" * 65,
    "inv_\u202e",
    "inv__-_-_-",
]

OVERLONG = [
    "长" * 5000,
    "a" * 4097,
    "x" * 100_000,
    "很长" * 3000,
    "\u200b" * 5000,
    "😀" * 3000,
    "e\u0301" * 3000,
    "一\n" * 3000,
]

BASES = (
    UNICODE + MARKUP + TEMPLATES + SQLISH + DATES + NUMBERS + COMMANDS_AS_TEXT + BLANK + DEEP_LINKS
)

#: ways a base string reaches the bot: alone, in a sentence, wrapped in traps
WRAPS = ("{}", "带领群众{}\u200b", "\u202e{}\u202c")


def corpus() -> list[str]:
    """Return the hostile inputs, at least 500, each once, in a fixed order."""
    out: dict[str, None] = {}
    for text in OVERLONG:
        out.setdefault(text)
    for trap in TRAP_CHARS:
        for text in (trap, f"张{trap}建国", trap * 3 + "党员"):
            out.setdefault(text)
    for base, wrap in itertools.product(BASES, WRAPS):
        out.setdefault(wrap.replace("{}", base))
    return list(out)
