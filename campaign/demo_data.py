"""A made-up but plausible Longnan (陇南市) roster, at any size, the same for the same seed.

The tree: the city, its nine counties and districts, their townships, and under each township
village (村) and community (社区) branches; county and city units (organs, institutions,
schools, enterprises, window units, social organizations) hang directly below their county or
the city. Upper-level people (审核人, 创先办, the level's 书记) sit on the level itself, typed
机关, so that a township 审核人 reviews the branches directly below the township.

A fixed cast (``DEMO_CAST``) is always present, with fixed phones, so that a scripted demo and
tests can act as them. The rows go through ``campaign.roster`` like any uploaded file.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from campaign.db import Store
from campaign.roster import (
    CATEGORY_WORDS,
    HEADER,
    ORG_TYPE_WORDS,
    ROLE_WORDS,
    ImportResult,
    Progress,
    import_parsed,
    validate_rows,
)
from models.org import Category, OrgType, Role

DEFAULT_SEED = 2011

Row = tuple[str, str, str, str, str, str, str, str]

_ROLE_WORD = {role: word for word, role in ROLE_WORDS.items()}
_TYPE_WORD = {kind: word for word, kind in ORG_TYPE_WORDS.items()}
_CATEGORY_WORD = {category: word for word, category in CATEGORY_WORDS.items()}


def _roles(*roles: Role) -> str:
    return "、".join(_ROLE_WORD[role] for role in roles)


# -- the fixed cast -----------------------------------------------------------------------------

CITY = "陇南市"
COUNTY = f"{CITY}/武都区"
TOWNSHIP = f"{COUNTY}/城关镇"
VILLAGE_BRANCH = f"{TOWNSHIP}/东江村党支部"


@dataclass(frozen=True)
class DemoPerson:
    """One fixed person of the demo: who they are, where, and what they may do."""

    phone: str
    name: str
    org: str
    org_type: OrgType
    category: Category | None
    post: str
    roles: tuple[Role, ...]
    rank: str = ""

    def row(self) -> Row:
        """Return this person as a roster row (header order)."""
        return (
            self.org,
            _TYPE_WORD[self.org_type],
            self.name,
            self.phone,
            _CATEGORY_WORD[self.category] if self.category else "",
            self.post,
            _roles(*self.roles),
            self.rank,
        )


@dataclass(frozen=True)
class DemoCast:
    """The fixed people of the demo, one chain from a village member up to the city office."""

    member: DemoPerson
    secretary: DemoPerson
    peer_a: DemoPerson
    peer_b: DemoPerson
    evaluator: DemoPerson
    reviewer: DemoPerson
    county_reviewer: DemoPerson
    county_office: DemoPerson
    city_office: DemoPerson

    def people(self) -> tuple[DemoPerson, ...]:
        """Return everyone in the cast, in phone order."""
        return tuple(sorted(vars(self).values(), key=lambda p: p.phone))


_VILLAGE, _ORGAN = OrgType.VILLAGE, OrgType.ORGAN
_RURAL, _ORGAN_CAT = Category.RURAL, Category.ORGAN
_M, _S, _R, _O, _E = Role.MEMBER, Role.SECRETARY, Role.REVIEWER, Role.OFFICE, Role.EVALUATOR

DEMO_CAST = DemoCast(
    member=DemoPerson("13800000001", "张建国", VILLAGE_BRANCH, _VILLAGE, _RURAL, "村文书", (_M,)),
    secretary=DemoPerson(
        "13800000002", "李秀英", VILLAGE_BRANCH, _VILLAGE, _RURAL, "村党支部书记", (_M, _S)
    ),
    peer_a=DemoPerson(
        "13800000003", "王志强", VILLAGE_BRANCH, _VILLAGE, _RURAL, "村民小组长", (_M,)
    ),
    peer_b=DemoPerson("13800000004", "刘桂兰", VILLAGE_BRANCH, _VILLAGE, _RURAL, "种植户", (_M,)),
    evaluator=DemoPerson(
        "13800000008", "周德福", VILLAGE_BRANCH, _VILLAGE, None, "村民代表", (_E,)
    ),
    reviewer=DemoPerson(
        "13800000005", "陈明", TOWNSHIP, _ORGAN, _ORGAN_CAT, "镇党委组织委员", (_M, _R), "副科级"
    ),
    county_reviewer=DemoPerson(
        "13800000009", "孙国华", COUNTY, _ORGAN, _ORGAN_CAT, "区委组织部副部长", (_M, _R), "正科级"
    ),
    county_office=DemoPerson(
        "13800000006", "杨志军", COUNTY, _ORGAN, _ORGAN_CAT, "区创先办主任", (_M, _O), "正科级"
    ),
    city_office=DemoPerson(
        "13800000007",
        "赵丽",
        CITY,
        _ORGAN,
        _ORGAN_CAT,
        "市委组织部副部长、市创先办主任",
        (_M, _O),
        "副县级",
    ),
)
DEMO_PEOPLE: tuple[DemoPerson, ...] = DEMO_CAST.people()

# -- place names, people's names, posts (data) -------------------------------------------------

#: county or district -> townships (镇/乡); the county seat first
TOWNSHIPS: dict[str, tuple[str, ...]] = {
    "武都区": (
        "城关镇",
        "东江镇",
        "汉王镇",
        "两水镇",
        "安化镇",
        "角弓镇",
        "外纳镇",
        "马街镇",
        "甘泉镇",
        "三河镇",
        "琵琶镇",
        "洛塘镇",
        "鱼龙镇",
        "桔柑镇",
        "佛崖镇",
        "柏林镇",
        "五库镇",
        "坪垭藏族乡",
        "龙凤乡",
        "蒲池乡",
    ),
    "成县": (
        "城关镇",
        "黄渚镇",
        "红川镇",
        "小川镇",
        "纸坊镇",
        "抛沙镇",
        "店村镇",
        "索池镇",
        "王磨镇",
        "陈院镇",
        "鸡峰镇",
        "苏元镇",
        "宋坪乡",
        "二郎乡",
    ),
    "文县": (
        "城关镇",
        "碧口镇",
        "尚德镇",
        "中寨镇",
        "临江镇",
        "桥头镇",
        "天池镇",
        "石鸡坝镇",
        "口头坝镇",
        "范坝镇",
        "梨坪镇",
        "堡子坝镇",
        "铁楼藏族乡",
    ),
    "宕昌县": (
        "城关镇",
        "哈达铺镇",
        "理川镇",
        "官亭镇",
        "沙湾镇",
        "阿坞镇",
        "南阳镇",
        "临江铺镇",
        "韩院镇",
        "南河镇",
        "兴化乡",
        "车拉乡",
        "甘江头乡",
    ),
    "康县": (
        "城关镇",
        "平洛镇",
        "大堡镇",
        "岸门口镇",
        "两河镇",
        "长坝镇",
        "云台镇",
        "王坝镇",
        "阳坝镇",
        "望关镇",
        "豆坪镇",
        "碾坝镇",
        "周家坝镇",
        "寺台镇",
    ),
    "西和县": (
        "汉源镇",
        "长道镇",
        "何坝镇",
        "姜席镇",
        "石峡镇",
        "洛峪镇",
        "西高山镇",
        "十里镇",
        "大桥镇",
        "卢河镇",
        "兴隆镇",
        "稍峪镇",
        "苏合镇",
        "马元镇",
    ),
    "礼县": (
        "城关镇",
        "盐官镇",
        "石桥镇",
        "祁山镇",
        "永兴镇",
        "红河镇",
        "宽川镇",
        "永坪镇",
        "罗坝镇",
        "江口镇",
        "白河镇",
        "雷王镇",
        "洮坪镇",
        "湫山镇",
        "中坝镇",
    ),
    "徽县": (
        "城关镇",
        "伏家镇",
        "江洛镇",
        "泥阳镇",
        "柳林镇",
        "嘉陵镇",
        "永宁镇",
        "银杏树镇",
        "水阳镇",
        "栗川镇",
        "麻沿河镇",
        "大河店镇",
        "高桥镇",
        "榆树乡",
    ),
    "两当县": (
        "城关镇",
        "站儿巷镇",
        "西坡镇",
        "杨店镇",
        "显龙镇",
        "鱼池镇",
        "左家镇",
        "云屏镇",
        "张家庄镇",
        "泰山镇",
    ),
}
COUNTIES: tuple[str, ...] = tuple(TOWNSHIPS)

SURNAMES = (
    "王王王李李李张张张刘刘陈陈杨杨杨赵赵黄周吴徐孙马马朱胡郭何何高林罗郑梁谢宋唐"
    "许韩冯邓曹彭曾苏蒲苟任雷姚董袁石汪魏贾丁"
)
GIVEN_MALE = (
    "建国",
    "志强",
    "国华",
    "军",
    "伟",
    "强",
    "磊",
    "勇",
    "明",
    "海",
    "涛",
    "斌",
    "平",
    "刚",
    "文",
    "华",
    "德福",
    "永红",
    "俊",
    "鹏",
    "小军",
    "振华",
    "晓东",
    "建军",
    "红军",
    "卫东",
    "宏伟",
    "建平",
    "学军",
    "兴旺",
    "文斌",
    "海军",
    "福林",
    "有才",
    "长青",
    "世杰",
    "宝山",
)
GIVEN_FEMALE = (
    "秀英",
    "桂兰",
    "丽",
    "芳",
    "娟",
    "敏",
    "静",
    "燕",
    "霞",
    "红",
    "玲",
    "艳",
    "梅",
    "婷",
    "春梅",
    "海燕",
    "丽娟",
    "晓红",
    "彩霞",
    "翠兰",
    "小芳",
    "雪梅",
    "玉兰",
    "淑珍",
    "亚琴",
)
PHONE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "173",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "193",
    "198",
    "199",
)  # no 138: the cast's 13800000001… stay out of reach

VILLAGE_PREFIXES = (
    "东",
    "西",
    "南",
    "北",
    "上",
    "下",
    "前",
    "后",
    "中",
    "大",
    "小",
    "新",
    "石",
    "马",
    "杨",
    "柳",
    "桃",
    "杏",
    "梨",
    "枣",
    "松",
    "柏",
    "红",
    "白",
    "黄",
    "青",
    "龙",
    "凤",
    "金",
    "高",
    "平",
    "安",
    "团结",
    "和平",
    "光明",
    "红旗",
    "新民",
    "联合",
    "胜利",
    "丰收",
    "椒园",
    "茶园",
)
VILLAGE_SUFFIXES = (
    "庄",
    "湾",
    "坝",
    "沟",
    "坪",
    "河",
    "山",
    "岭",
    "峪",
    "川",
    "台",
    "园",
    "寨",
    "堡",
    "口",
    "门",
    "院",
    "关",
    "滩",
    "崖",
    "垭",
    "树",
    "林",
)
COMMUNITY_NAMES = (
    "东关",
    "西关",
    "南关",
    "北关",
    "东街",
    "西街",
    "南街",
    "北街",
    "滨江",
    "江南",
    "钟楼",
    "城北",
    "城南",
    "新华",
    "和平",
    "建设",
    "幸福",
    "阳光",
    "花园",
    "民主",
    "文化",
    "府前",
)


@dataclass(frozen=True)
class _Kind:
    """A kind of branch: its type, its members' category and what posts people hold there."""

    org_type: OrgType
    category: Category
    secretary_post: str
    posts: tuple[str, ...]
    evaluator_post: str
    size_weight: float


KINDS: dict[str, _Kind] = {
    "village": _Kind(
        OrgType.VILLAGE,
        Category.RURAL,
        "村党支部书记",
        (
            "村委会主任",
            "村文书",
            "村监委会主任",
            "村民小组长",
            "网格员",
            "种植户",
            "养殖户",
            "致富带头人",
            "农民专业合作社理事长",
            "护林员",
            "村医",
            "退役军人",
            "外出务工人员",
            "农民",
            "农民",
            "农民",
            "农民",
        ),
        "村民代表",
        1.0,
    ),
    "community": _Kind(
        OrgType.COMMUNITY,
        Category.COMMUNITY,
        "社区党支部书记",
        (
            "社区居委会主任",
            "社区干事",
            "网格员",
            "网格员",
            "楼栋长",
            "社区志愿者",
            "退休职工",
            "个体工商户",
            "居民",
            "居民",
        ),
        "居民代表",
        1.2,
    ),
    "organ": _Kind(
        OrgType.ORGAN,
        Category.ORGAN,
        "机关党支部书记",
        ("副局长", "办公室主任", "股长", "科员", "科员", "科员", "干部"),
        "服务对象代表",
        0.7,
    ),
    "institution": _Kind(
        OrgType.INSTITUTION,
        Category.ORGAN,
        "党支部书记",
        ("副院长", "科室主任", "医生", "医生", "护士", "护士", "技术员", "会计", "工作人员"),
        "服务对象代表",
        1.3,
    ),
    "school": _Kind(
        OrgType.SCHOOL,
        Category.ORGAN,
        "党支部书记",
        ("副校长", "教务主任", "班主任", "教师", "教师", "教师", "教师", "后勤主任"),
        "家长代表",
        1.4,
    ),
    "enterprise": _Kind(
        OrgType.ENTERPRISE,
        Category.ENTERPRISE,
        "党支部书记",
        (
            "总经理",
            "副总经理",
            "车间主任",
            "技术员",
            "安全员",
            "质检员",
            "班组长",
            "会计",
            "职工",
            "职工",
        ),
        "职工代表",
        1.1,
    ),
    "private": _Kind(
        OrgType.PRIVATE_ENTERPRISE,
        Category.ENTERPRISE,
        "党支部书记",
        ("董事长", "总经理", "车间主任", "技术员", "销售经理", "电商运营", "职工", "职工"),
        "职工代表",
        0.8,
    ),
    "window": _Kind(
        OrgType.INSTITUTION,
        Category.WINDOW,
        "党支部书记",
        ("窗口负责人", "窗口工作人员", "窗口工作人员", "窗口工作人员", "业务骨干", "咨询引导员"),
        "服务对象代表",
        0.9,
    ),
    "social": _Kind(
        OrgType.SOCIAL,
        Category.COMMUNITY,
        "党支部书记",
        ("会长", "秘书长", "会员", "会员", "社工"),
        "会员代表",
        0.5,
    ),
}

#: county-level units by kind; ``{c}`` is the county's name
COUNTY_UNITS: dict[str, tuple[str, ...]] = {
    "organ": (
        "{c}财政局",
        "{c}发展和改革局",
        "{c}农业农村局",
        "{c}自然资源局",
        "{c}住房和城乡建设局",
        "{c}交通运输局",
        "{c}水务局",
        "{c}林业和草原局",
        "{c}民政局",
        "{c}人力资源和社会保障局",
        "{c}卫生健康局",
        "{c}市场监督管理局",
        "{c}应急管理局",
        "{c}司法局",
        "{c}统计局",
        "{c}审计局",
        "{c}商务局",
        "{c}文化和旅游局",
        "{c}教育局",
        "{c}乡村振兴局",
    ),
    "institution": (
        "{c}人民医院",
        "{c}中医医院",
        "{c}疾病预防控制中心",
        "{c}妇幼保健院",
        "{c}农业技术推广中心",
        "{c}融媒体中心",
        "{c}图书馆",
    ),
    "school": (
        "{c}第一中学",
        "{c}第二中学",
        "{c}职业中等专业学校",
        "{c}实验小学",
        "{c}城关小学",
        "{c}实验幼儿园",
    ),
    "enterprise": ("国网{c}供电公司", "{c}自来水公司", "{c}城市建设投资有限公司", "{c}供销合作社"),
    "private": (
        "{c}油橄榄开发有限公司",
        "{c}茶业有限公司",
        "{c}花椒产业有限公司",
        "{c}核桃开发有限公司",
        "{c}中药材有限公司",
        "{c}电子商务有限公司",
        "{c}食用菌有限公司",
        "{c}建材有限公司",
    ),
    "window": (
        "{c}政务服务中心",
        "{c}不动产登记中心",
        "{c}税务局办税服务厅",
        "{c}社会保险服务中心",
        "{c}公安局户籍窗口",
    ),
    "social": ("{c}个体劳动者协会", "{c}民营企业家协会", "{c}慈善协会"),
}
#: city-level units (directly below the city)
CITY_UNITS: tuple[tuple[str, str], ...] = (
    ("organ", "陇南市财政局"),
    ("organ", "陇南市教育局"),
    ("organ", "陇南市农业农村局"),
    ("institution", "陇南市第一人民医院"),
    ("school", "陇南师范高等专科学校"),
    ("school", "陇南市第一中学"),
    ("window", "陇南市政务服务中心"),
    ("enterprise", "国网陇南供电公司"),
    ("private", "陇南市电子商务产业园有限公司"),
    ("social", "陇南市青年企业家协会"),
)
#: share of a county's branches that are county units rather than township branches
UNIT_SHARE = 0.15
UNIT_KIND_WEIGHTS = {
    "organ": 35,
    "institution": 14,
    "school": 20,
    "enterprise": 9,
    "private": 10,
    "window": 8,
    "social": 4,
}
MEMBERS_PER_BRANCH = 30
BRANCHES_PER_COUNTY = 40
BRANCHES_PER_TOWNSHIP = 18
_ORDINALS = "一二三四五六七八九十"


@dataclass
class _Branch:
    path: str
    kind: str
    size: int = 0
    has_secretary: bool = False


class _Generator:
    """Lay out the tree and fill it with people, all from one seeded random source."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.phones = {p.phone for p in DEMO_PEOPLE}
        self.rows: list[Row] = []

    # people

    def name(self) -> str:
        """Return a plausible Chinese name."""
        given = GIVEN_MALE if self.rng.random() < 0.6 else GIVEN_FEMALE
        return self.rng.choice(SURNAMES) + self.rng.choice(given)

    def phone(self) -> str:
        """Return a mobile number not used yet."""
        while True:
            phone = self.rng.choice(PHONE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone

    def add(
        self,
        org: str,
        org_type: OrgType,
        category: Category | None,
        post: str,
        roles: tuple[Role, ...],
        rank: str = "",
    ) -> None:
        """Append one generated person."""
        self.rows.append(
            (
                org,
                _TYPE_WORD[org_type],
                self.name(),
                self.phone(),
                _CATEGORY_WORD[category] if category else "",
                post,
                _roles(*roles),
                rank,
            )
        )

    # the tree

    def unique(self, used: set[str], make: Callable[[], str] | None, fallback: str) -> str:
        """Return a name from ``make`` not in ``used``, numbering ``fallback`` if need be."""
        for _ in range(50 if make is not None else 0):
            name = make()
            if name not in used:
                used.add(name)
                return name
        n = 1
        while (name := fallback.format(n=_ordinal(n))) in used:
            n += 1
        used.add(name)
        return name

    def village(self, used: set[str]) -> str:
        """Return a new village branch name."""

        def make() -> str:
            if self.rng.random() < 0.35:
                return f"{self.rng.choice(SURNAMES)}家{self.rng.choice(VILLAGE_SUFFIXES)}村党支部"
            return (
                f"{self.rng.choice(VILLAGE_PREFIXES)}{self.rng.choice(VILLAGE_SUFFIXES)}村党支部"
            )

        return self.unique(used, make, "新村第{n}党支部")

    def community(self, used: set[str]) -> str:
        """Return a new community branch name."""
        return self.unique(
            used, lambda: f"{self.rng.choice(COMMUNITY_NAMES)}社区党支部", "新城社区第{n}党支部"
        )

    def unit(self, county: str, kind: str, used: set[str]) -> str:
        """Return a new county unit branch name of that kind."""
        names = [n.format(c=county) for n in COUNTY_UNITS[kind]]
        for name in names:
            if f"{name}党支部" not in used:
                used.add(f"{name}党支部")
                return f"{name}党支部"
        return self.unique(used, None, self.rng.choice(names) + "第{n}党支部")

    def layout(self, branch_count: int) -> list[_Branch]:
        """Lay out ``branch_count`` branches over the city, counties and townships."""
        branches: list[_Branch] = [_Branch(VILLAGE_BRANCH, "village", has_secretary=True)]
        city_units = min(len(CITY_UNITS), round(branch_count * 0.03))
        rest = max(branch_count - 1 - city_units, 0)
        for kind, name in CITY_UNITS[:city_units]:
            branches.append(_Branch(f"{CITY}/{name}党支部", kind))
        counties = COUNTIES[
            : max(1, min(len(COUNTIES), math.ceil((rest + 1) / BRANCHES_PER_COUNTY)))
        ]
        per_county = _spread(rest + 1, len(counties))
        kinds, weights = zip(*UNIT_KIND_WEIGHTS.items(), strict=True)
        for county, count in zip(counties, per_county, strict=True):
            used: set[str] = {VILLAGE_BRANCH.rsplit("/", 1)[1]} if county == "武都区" else set()
            if county == "武都区":
                count -= 1  # 东江村党支部 is one of them
            units = round(count * UNIT_SHARE) if count >= 3 else 0
            for _ in range(units):
                kind = self.rng.choices(kinds, weights)[0]
                branches.append(_Branch(f"{CITY}/{county}/{self.unit(county, kind, used)}", kind))
            grass = count - units
            townships = TOWNSHIPS[county][
                : max(1, min(len(TOWNSHIPS[county]), math.ceil(grass / BRANCHES_PER_TOWNSHIP)))
            ]
            for index, (township, n) in enumerate(
                zip(townships, _spread(grass, len(townships)), strict=True)
            ):
                share = 0.4 if index == 0 else 0.08  # communities gather in the county seat
                names = used if (county == "武都区" and index == 0) else set()
                for _ in range(n):
                    if self.rng.random() < share:
                        kind, branch = "community", self.community(names)
                    else:
                        kind, branch = "village", self.village(names)
                    branches.append(_Branch(f"{CITY}/{county}/{township}/{branch}", kind))
        return branches[:branch_count]

    def levels(self, branches: list[_Branch]) -> None:
        """Add the people of the city, county and township levels above these branches."""
        organ, cat = OrgType.ORGAN, Category.ORGAN
        self.add(CITY, organ, cat, "市委组织部部长", (_M, _S, _R), "正县级")
        self.add(CITY, organ, cat, "市委组织部组织科科长", (_M, _R), "正科级")
        self.add(CITY, organ, cat, "市创先办干事", (_M, _O))
        counties: dict[str, set[str]] = {}
        for branch in branches:
            parts = branch.path.split("/")
            if len(parts) >= 3:
                counties.setdefault(parts[1], set())
            if len(parts) == 4:
                counties[parts[1]].add(parts[2])
        for county in COUNTIES:
            if county not in counties:
                continue
            path = f"{CITY}/{county}"
            committee = "区委" if county.endswith("区") else "县委"
            short = committee[0]
            self.add(path, organ, cat, f"{committee}组织部部长", (_M, _S, _R), "副县级")
            if county != "武都区":
                self.add(path, organ, cat, f"{committee}组织部副部长", (_M, _R), "正科级")
                self.add(path, organ, cat, f"{short}创先办主任", (_M, _O), "正科级")
            self.add(path, organ, cat, f"{short}创先办干事", (_M, _O))
            for township in TOWNSHIPS[county]:
                if township not in counties[county]:
                    continue
                level = f"{path}/{township}"
                word = township[-1]  # 镇 or 乡
                self.add(level, organ, cat, f"{word}党委书记", (_M, _S, _R), "正科级")
                if level != TOWNSHIP:
                    self.add(level, organ, cat, f"{word}党委组织委员", (_M, _R), "副科级")
                self.add(level, organ, cat, f"{word}长", (_M,), "正科级")
                self.add(level, organ, cat, "驻村干部", (_M,))

    def fill(self, branch: _Branch) -> None:
        """Add the people of one branch: its secretary, members and evaluators."""
        kind = KINDS[branch.kind]
        rank = "副科级" if branch.kind in ("organ", "institution", "school") else ""
        left = branch.size
        if not branch.has_secretary and left > 0:
            self.add(
                branch.path, kind.org_type, kind.category, kind.secretary_post, (_M, _S), rank
            )
            left -= 1
        if left >= 5 and self.rng.random() < 0.5:
            self.add(branch.path, kind.org_type, None, kind.evaluator_post, (_E,))
            left -= 1
        if left >= 8 and self.rng.random() < 0.3:
            self.add(branch.path, kind.org_type, kind.category, "县人大代表", (_M, _E))
            left -= 1
        for _ in range(left):
            post = self.rng.choice(kind.posts)
            self.add(branch.path, kind.org_type, kind.category, post, (_M,))

    def build(self, members: int) -> list[Row]:
        """Return ``members`` roster rows (never fewer than the fixed cast)."""
        self.rows = [person.row() for person in DEMO_PEOPLE]
        budget = max(members, len(self.rows)) - len(self.rows)
        branch_count = max(1, budget // MEMBERS_PER_BRANCH)
        branches = self.layout(branch_count)
        self.levels(branches)
        # Small rosters keep the levels' people and drop what does not fit.
        del self.rows[max(members, len(DEMO_PEOPLE)) :]
        budget = max(members - len(self.rows), 0)
        branches = branches[: max(1, min(len(branches), budget // 3))]
        weights = [KINDS[b.kind].size_weight * self.rng.uniform(0.5, 1.5) for b in branches]
        for branch, size in zip(branches, _apportion(budget, weights), strict=True):
            branch.size = size
            self.fill(branch)
        return self.rows


def _spread(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _apportion(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainders), summing exactly."""
    whole = sum(weights)
    shares = [total * w / whole for w in weights]
    sizes = [math.floor(s) for s in shares]
    order = sorted(range(len(shares)), key=lambda i: sizes[i] - shares[i])
    for i in order[: total - sum(sizes)]:
        sizes[i] += 1
    return sizes


def _ordinal(n: int) -> str:
    if n <= 10:
        return _ORDINALS[n - 1]
    return str(n)


def generate_roster(members: int, seed: int = DEFAULT_SEED) -> list[Row]:
    """Return a demo roster of ``members`` rows (header not included), fixed cast first."""
    return _Generator(seed).build(members)


def roster_table(rows: list[Row]) -> Iterator[tuple[str, ...]]:
    """Yield the header and then the rows, as ``validate_rows`` takes them."""
    yield HEADER
    yield from rows


async def load_demo(
    store: Store, members: int, seed: int = DEFAULT_SEED, progress: Progress | None = None
) -> ImportResult:
    """Generate a demo roster and import it through the ordinary roster import."""
    rows = generate_roster(members, seed)
    parsed = validate_rows(roster_table(rows))
    return await import_parsed(store, parsed, progress)
