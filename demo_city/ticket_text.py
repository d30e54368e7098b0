"""Hotline descriptions with labelled personal data: what callers dictate, and exactly where it sits.

Each description is composed from pieces (the complaint, where it happened, who is involved, how to call
back, identifiers, ordinary numbers) and every sensitive span is recorded as it is written, so the labels
are true by construction. Nothing here uses the pipeline's scrubber or its rules: IDs come from
``idnumbers`` (GB 11643 computed from the standard), bank cards get their Luhn digit from the ISO/IEC 7812
definition below, plates follow GA 36 as written here, names come from the registry's people or faker's
zh_CN names, e-mails from faker. Ordinary numbers (amounts, dates, order, parcel and ticket numbers,
metro lines, floors) and road names without a house number are written unlabelled: a scrubber must leave
them. The address label covers the road, compound or village and every numbered part below it; the
province, city, county and township before it are not personal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from faker import Faker

from citybrain.reference import divisions
from demo_city import idnumbers, places, vocab

LABEL_KINDS = ("resident_id", "bank_card", "mobile", "landline", "email", "plate", "address", "name")
CORPUS_FILE = "hotline_text_labels.jsonl"

# GA 36 province abbreviations and the letters a plate may use (no I, no O).
PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
AREA_CODES = ["010", "021", "022", "023", "020", "025", "027", "028", "029", "0571", "0574", "0512", "0755", "0531", "0371", "0731", "0851", "0991"]  # fmt: skip
COMPOUND_SUFFIXES = ["小区", "花园", "家园", "公寓", "苑", "新村", "府", "大厦"]
CN_DIGITS = "一二三四五六七八九"
COMPLAINTS = [
    "小区附近工地夜间施工噪音很大，影响休息", "楼下商铺音响声音过大", "路面出现坑洼，车辆通行不便",
    "人行道地砖松动，老人容易绊倒", "小区垃圾桶满溢无人清运", "路边堆放建筑垃圾多日未处理",
    "物业不作为，电梯长期故障", "物业费上涨未经业主大会同意", "公交班次太少，早高峰等车时间长",
    "路口信号灯配时不合理", "小区停水未提前通知", "楼道照明损坏", "商家虚假宣传，拒绝退款",
    "超市销售过期食品", "公司拖欠工资三个月", "单位未缴纳社会保险", "咨询学区划分及入学政策",
    "学校周边交通安全隐患", "社区医院预约挂号困难", "咨询疫苗接种时间", "楼上漏水把我家天花板泡坏了",
    "车辆长期占用消防通道", "饭店油烟直排，窗户都不敢开", "共享单车乱停放堵住出入口",
]  # fmt: skip


# Everyday phrases with words that are also people's names (和平, 文明, 高峰, 周…) or look like places.
ORDINARY_PHRASES = [
    "正在创建文明城市", "节假日客流高峰", "影响周边居民和平安宁", "周一至周五都这样", "向阳面的窗户被挡住",
    "沿街商铺占道经营", "社区网格员上门了解过", "希望有关部门尽快处理", "附近学校放学时段拥堵",
    "金华火腿专卖店", "小区东门", "3号门岗", "B座电梯", "第2期工程",
]  # fmt: skip


@dataclass(frozen=True)
class Caller:
    name: str
    phone: str
    id_number: str


class _Writer:
    """Text written piece by piece, with the span of every labelled piece."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[dict] = []
        self.length = 0

    def add(self, text: str, kind: str | None = None) -> None:
        if kind:
            self.spans.append({"kind": kind, "start": self.length, "end": self.length + len(text)})
        self.parts.append(text)
        self.length += len(text)

    def text(self) -> str:
        return "".join(self.parts)


def luhn_digit(body: str) -> str:
    """ISO/IEC 7812 check digit: double every second digit from the right of the body, sum digits."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


class TicketWriter:
    """Composes labelled descriptions. ``prefixes``: address prefixes of the city's counties (浙江省杭州市西湖区);
    ``names``: people the caller may name (the registry's); ``seed`` for faker's e-mail addresses."""

    def __init__(
        self, rng: np.random.Generator, prefixes: list[str], names: np.ndarray, seed: int, codes: list[str]
    ):
        self.rng = rng
        self.prefixes = prefixes
        self.codes = codes
        self.names = names
        self.streets = vocab.streets(rng, 200)
        self.faker = Faker("zh_CN")
        self.faker.seed_instance(seed)

    def _pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def _chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def describe(self, complaint: str, caller: Caller, prefix: str | None = None, must: tuple[str, ...] = ()):
        """(text, spans) for one ticket; ``must`` forces pieces ('mobile', 'resident_id')."""
        pieces = []
        if self._chance(0.9):
            pieces.append(self._location(prefix or self._pick(self.prefixes)))
        if self._chance(0.45):
            pieces.append(self._caller_name(caller.name))
        if self._chance(0.35):
            pieces.append(
                self._third_party(self._pick(self.names) if self._chance(0.8) else self._outsider())
            )
        if "mobile" in must or self._chance(0.3):
            pieces.append(self._mobile(caller.phone))
        if self._chance(0.12):
            pieces.append(self._landline())
        if "resident_id" in must or self._chance(0.1):
            pieces.append(self._resident_id(caller.id_number))
        if self._chance(0.06):
            pieces.append(self._bank_card())
        if self._chance(0.06):
            pieces.append(self._email())
        if self._chance(0.1):
            pieces.append(self._plate())
        for _ in range(int(self.rng.integers(0, 3))):
            pieces.append(self._ordinary())
        order = self.rng.permutation(len(pieces))
        w = _Writer()
        w.add(complaint)
        for k in order:
            w.add("，")
            for text, kind in pieces[k]:
                w.add(text, kind)
        w.add("。")
        return w.text(), w.spans

    # -- pieces: lists of (text, kind or None) ---------------------------------------------------------------
    def _num(self, low: int, high: int) -> str:
        value = int(self.rng.integers(low, high))
        return CN_DIGITS[value - 1] if value <= 9 and self._chance(0.1) else str(value)

    def _location(self, prefix: str):
        cue = self._pick(["地点：", "地址：", "位于", "事发地点：", "我家住在", "在", "家住", ""])
        admin = prefix if self._chance(0.6) else ""
        if admin and self._chance(0.3):
            admin += "".join(self.rng.choice(list(vocab.STREET_SYLLABLES), 2)) + self._pick(["街道", "镇"])
        street = self._pick(self.streets)
        flat = self._pick(
            [
                f"{self._num(1, 40)}幢{self._num(1, 6)}单元{int(self.rng.integers(1, 30)) * 100 + int(self.rng.integers(1, 5))}室",
                f"{self._num(1, 40)}栋{int(self.rng.integers(1, 30)) * 100 + int(self.rng.integers(1, 5))}室",
                f"{self._num(1, 40)}号楼{self._num(1, 6)}单元{int(self.rng.integers(1, 30)) * 100 + int(self.rng.integers(1, 5))}",
                f"{self._num(1, 40)}号楼{self._num(1, 30)}层",
            ]
        )
        shape = self.rng.random()
        if shape < 0.35:
            detail = f"{street}{self._num(1, 900)}号" + (flat if self._chance(0.5) else "")
        elif shape < 0.45:
            room = int(self.rng.integers(1, 30)) * 100 + int(self.rng.integers(1, 5))
            detail = f"{street}{self._num(1, 900)}弄{self._num(1, 60)}号{room}室"
        elif shape < 0.75:
            name = "".join(self.rng.choice(list(vocab.STREET_SYLLABLES), 2)) + self._pick(COMPOUND_SUFFIXES)
            detail = name + flat
        elif shape < 0.85:
            village = "".join(self.rng.choice(list(vocab.STREET_SYLLABLES), 2)) + "村"
            detail = f"{village}{self._num(1, 12)}组{self._num(1, 90)}号"
        else:  # a public place, not anyone's home: no label
            other = self._pick(self.streets)
            where = self._pick([f"与{other}交叉口", "附近", "沿线", "东侧", "公交站旁"])
            return [(cue + admin + street + where, None)]
        return [(cue + admin, None), (detail, "address")]

    def _caller_name(self, name: str):
        form = self._pick(
            ["我叫{}", "本人{}", "联系人：{}", "业主{}反映", "{}先生来电", "{}女士来电", "来电人{}", "{}"]
        )
        before, _, after = form.partition("{}")
        return [(before, None), (name, "name"), (after or self._pick(["来电反映", "称", "表示"]), None)]

    def _third_party(self, name: str):
        form = self._pick(
            ["邻居{}经常在楼道堆放杂物", "楼上住户{}半夜装修", "房东{}拒不退还押金", "{}家的狗经常乱叫",
             "施工方负责人{}不接电话", "物业经理{}态度恶劣", "找过{}几次都没解决", "老板{}拖欠工资", "请转告{}"]
        )  # fmt: skip
        before, _, after = form.partition("{}")
        return [(before, None), (name, "name"), (after, None)]

    def _outsider(self) -> str:
        """A name from faker's zh_CN lists, which may or may not be a registered resident's."""
        return self.faker.name()

    def _mobile(self, phone: str):
        p = str(phone)
        text = self._pick(
            [p, f"{p[:3]} {p[3:7]} {p[7:]}", f"{p[:3]}-{p[3:7]}-{p[7:]}", f"+86 {p}", f"+86{p}"]
        )
        return [
            (self._pick(["联系电话", "手机", "电话", "回电请拨", "手机号：", "我的电话是"]), None),
            (text, "mobile"),
        ]

    def _landline(self):
        area = self._pick(AREA_CODES)
        local = str(int(self.rng.integers(2, 10))) + "".join(
            str(d) for d in self.rng.integers(0, 10, 7 if len(area) == 3 else int(self.rng.integers(6, 8)))
        )
        shape = self.rng.random()
        if shape < 0.4:
            text, cue = f"{area}-{local}", self._pick(["座机", "单位电话", "家里电话", "固话"])
        elif shape < 0.55:
            text, cue = f"({area}){local}", "座机"
        elif shape < 0.65:
            text, cue = f"{area}-{local}转{int(self.rng.integers(1, 9999))}", "办公电话"
        elif shape < 0.8:
            head, mid, tail = (
                self._pick(["400", "800"]),
                self.rng.integers(100, 1000),
                self.rng.integers(1000, 10000),
            )
            text, cue = f"{head}-{mid}-{tail}", "客服电话"
        else:
            local = str(int(self.rng.integers(2, 10))) + "".join(str(d) for d in self.rng.integers(0, 10, 7))
            return [(self._pick(["电话", "座机", "电话是"]), None), (local, "landline")]
        return [(cue, None), (text, "landline")]

    def _resident_id(self, id18: str):
        born_1900s = id18[6:8] == "19"
        shape = self.rng.random()
        if shape < 0.2 and born_1900s:
            text = idnumbers.to_legacy_15(id18)
        elif shape < 0.3:
            text = f"{id18[:6]} {id18[6:14]} {id18[14:]}"
        else:
            text = id18.lower() if self._chance(0.3) else id18
        return [
            (self._pick(["本人身份证号", "身份证", "证件号码：", "身份证号码是"]), None),
            (text, "resident_id"),
        ]

    def _bank_card(self):
        length = self._pick([16, 19, 19])
        issuer = self._pick(["622202", "622848", "621700", "623058", "436742", "524047"])
        body = issuer + "".join(str(d) for d in self.rng.integers(0, 10, length - 7))
        number = body + luhn_digit(body)
        if self._chance(0.5):
            number = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        return [(self._pick(["银行卡号", "退款账户", "卡号"]), None), (number, "bank_card")]

    def _email(self):
        return [(self._pick(["邮箱", "电子邮箱：", "邮件发到"]), None), (self.faker.free_email(), "email")]

    def _plate(self):
        head = self._pick(PLATE_PROVINCES) + self._pick(PLATE_LETTERS)
        alnum = PLATE_LETTERS + "0123456789"
        if self._chance(0.3):  # new-energy: D/F then a letter or digit and 4 digits
            tail = self._pick("DF") + self._pick(alnum) + "".join(str(d) for d in self.rng.integers(0, 10, 4))
        else:
            tail = "".join(self._pick(alnum) for _ in range(5))
        plate = head + ("·" if self._chance(0.2) else "") + tail
        form = self._pick(["车牌{}的车辆", "车牌号{}", "一辆{}的轿车", "{}"])
        before, _, after = form.partition("{}")
        return [(before, None), (plate, "plate"), (after or "违停", None)]

    def _ordinary(self):
        """Numbers and words a scrubber must leave alone."""
        digits = "".join(str(d) for d in self.rng.integers(0, 10, 17))
        bad_check = digits + str(int(self.rng.integers(0, 10)))
        options = [
            f"金额{int(self.rng.integers(10, 20000))}元", f"罚款{int(self.rng.integers(1, 50)) * 100}元",
            f"{int(self.rng.integers(2020, 2027))}年{int(self.rng.integers(1, 13))}月{int(self.rng.integers(1, 29))}日",
            f"{int(self.rng.integers(1, 13))}月{int(self.rng.integers(1, 29))}号", f"订单号{bad_check}",
            f"快递单号SF{''.join(str(d) for d in self.rng.integers(0, 10, 12))}",
            f"工单号RX2026{int(self.rng.integers(1, 13)):02d}{int(self.rng.integers(1, 29)):02d}{int(self.rng.integers(1, 999999)):06d}",
            f"地铁{int(self.rng.integers(1, 20))}号线", f"{int(self.rng.integers(2, 30))}楼大厅",
            f"已经第{int(self.rng.integers(2, 6))}次来电", f"早上{int(self.rng.integers(6, 12))}点",
            f"流水号{''.join(str(d) for d in self.rng.integers(0, 10, 19))}",
            f"电表户号{''.join(str(d) for d in self.rng.integers(0, 10, int(self.rng.integers(10, 17))))}",
            f"营业执照注册号{self._pick(self.codes)}{''.join(str(d) for d in self.rng.integers(0, 10, 9))}",
        ] + ORDINARY_PHRASES  # fmt: skip
        return [(self._pick(options), None)]


def synthetic_callers(rng: np.random.Generator, n: int, today: date, codes: list[str]) -> list[Caller]:
    """People for a corpus without a city: faker zh_CN names, GB 11643 IDs (first registered in one of the
    county ``codes``, or the code stdnum knew then), mobile numbers."""
    male = rng.random(n) < 0.5
    names = vocab.person_names(rng, male)
    years = rng.integers(1940, today.year - 18, n)
    wanted = np.array([int(codes[i]) for i in rng.integers(0, len(codes), n)])
    address = idnumbers.id_address_code_ints(wanted, years)
    ymd = years * 10000 + rng.integers(1, 13, n) * 100 + rng.integers(1, 29, n)
    seq = rng.integers(0, 500, n) * 2 + male
    ids = idnumbers.resident_ids(address, ymd, seq).to_pylist()
    prefixes = np.array([139, 138, 137, 135, 150, 158, 186, 189, 133, 177, 199, 155])
    phones = prefixes[rng.integers(0, len(prefixes), n)] * 10**8 + rng.integers(0, 10**8, n)
    return [Caller(str(a), str(p), str(i)) for a, p, i in zip(names, phones, ids, strict=True)]


def labelled_corpus(seed: int, n: int, residents: int = 20000, today: date | None = None):
    """``n`` labelled tickets and the registry names of the synthetic city they come from.

    Returns (records, registry_names); a record is {"ticket_id", "text", "spans"}."""
    rng = np.random.default_rng(seed)
    today = today or date.today()
    codes = sorted(rng.choice(divisions.all_current_codes(), 12, replace=False))
    people = synthetic_callers(rng, residents, today, codes)
    names = np.array([p.name for p in people], dtype=object)
    prefixes = list(places.address_prefix(divisions.current_counties(codes)))
    writer = TicketWriter(rng, prefixes, names, seed, codes)
    records = []
    for k in range(n):
        caller = people[int(rng.integers(len(people)))]
        text, spans = writer.describe(writer._pick(COMPLAINTS), caller)
        records.append({"ticket_id": f"T{k:06d}", "text": text, "spans": spans})
    return records, sorted(set(names))


def write_labels(path: Path, tickets: pd.DataFrame, spans: list[list[dict]]) -> Path:
    """The ground truth of the demo's descriptions: one JSON line per ticket with its labelled spans."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for ticket_id, text, ticket_spans in zip(
            tickets["ticket_id"], tickets["description"], spans, strict=True
        ):
            f.write(
                json.dumps({"ticket_id": ticket_id, "text": text, "spans": ticket_spans}, ensure_ascii=False)
                + "\n"
            )
    return path


def read_labels(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
