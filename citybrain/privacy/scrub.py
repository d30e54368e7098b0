"""Free-text de-identification: find personal data in a text and replace it, kind by kind.

Why a module of its own: free text (hotline descriptions, any ``pii: free_text`` column) carries whatever a
caller dictates, so no column rule can mask it. Each kind is found by a pattern and kept only if it passes a
maintained check, so ordinary numbers (amounts, dates, order and ticket numbers) stay readable:

* resident IDs: 18 characters whose GB 11643 check digit and birth date pass (python-stdnum), and legacy
  15-digit ones, which have no check digit: their birth date (19YYMMDD) must exist and their address code
  must be a county-level code of python-stdnum's division history;
* bank cards: 16 to 19 digits passing Luhn (python-stdnum), issuer digit 3-6 or 9, and written like a card:
  grouped by spaces or dashes, 16 or 19 digits long, or after a word for card or account (one number in ten
  passes Luhn by chance, so an ungrouped 17- or 18-digit order number needs that word);
* mobiles (``1[3-9]`` + 9 digits, ``+86`` allowed), landlines (area code, extension, 400/800 numbers, and an
  8-digit local number right after a word for telephone), e-mail addresses, licence plates (GA 36: a
  province abbreviation, the authority letter, 5 characters, or 6 for new-energy plates);
* person names: the registry's own names (the warehouse holds every resident's) found in the text, plus the
  names jieba's segmenter discovers (unknown or rare name-tagged words that start with a surname of the
  registry or of jieba's person names, whose other characters occur in jieba's given names); a name that is
  also a common word (``和平``, ``高峰``: jieba's dictionary frequency) needs a cue such as 叫 or 先生;
* addresses below the township: house number, building, unit, floor, room, and the road, compound or village
  they hang on, back to a particle (在, 住 …), punctuation or the last character of a division. Provinces,
  cities, counties and townships stay: the row already has its district, and a road without a number names
  no one's home.

``Scrubber.find`` returns the spans (for the benchmark and tests), ``Scrubber.scrub`` the masked text. Load
once per process: jieba's dictionary takes about a second (loaded on the first text with Chinese in it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache

from stdnum import luhn
from stdnum.cn import ric

KINDS = ("email", "resident_id", "bank_card", "mobile", "landline", "plate", "address", "name")
ADDRESS_PLACEHOLDER = "[地址]"

# Full-width ASCII (U+FF01-FF5E) and the ideographic space to ASCII, one character for one character, so
# spans found in the normalised text are spans of the original.
_HALFWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_EMAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ID18 = re.compile(r"(?<![0-9A-Za-z])[0-9]{6} ?[0-9]{8} ?[0-9]{3}[0-9Xx](?![0-9A-Za-z])")
_ID15 = re.compile(r"(?<![0-9A-Za-z])[0-9]{15}(?![0-9A-Za-z])")
_CARD = re.compile(r"(?<![0-9A-Za-z])[3-69][0-9]{3}(?:[ -]?[0-9]){12,15}(?![0-9A-Za-z])")
_CLAUSE = re.compile(r"[^，。；！？、,;!?\n]+")
_CARD_CUE = re.compile(r"卡|账号|账户|帐号|帐户|银行")
_MOBILE = re.compile(r"(?<![0-9])(?:(?:\+|00)?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])")
_AREA = r"0(?:10|2[0-9]|[3-9][0-9]{2})"
_LANDLINE = re.compile(
    rf"(?<![0-9A-Za-z])(?:[(（]{_AREA}[)）] ?|{_AREA}[ -]?)[2-9][0-9]{{6,7}}"
    r"(?:(?:转|-|分机|ext\.? ?)[0-9]{1,5})?(?![0-9])"
    r"|(?<![0-9A-Za-z])[48]00[ -]?[0-9]{3}[ -]?[0-9]{4}(?![0-9])"
)
_LOCAL_NUMBER = re.compile(r"(?:电话|座机|固话|致电|拨打)[是为：: ]{0,2}([2-9][0-9]{7})(?![0-9])")
_PLATE = re.compile(
    r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Za-hj-np-z][·•.． ]?"
    r"(?:[DFdf][A-HJ-NP-Za-hj-np-z0-9][0-9]{4}|[0-9]{5}[DFdf]|[A-HJ-NP-Za-hj-np-z0-9]{4}[A-HJ-NP-Za-hj-np-z0-9挂学警])"
    r"(?![A-Za-z0-9])"
)

# Address detail: numbered components (house number, building, unit, floor, room, village group), one or more
# in a row. A house number alone needs a road or compound before it ('3号' is also a date).
_NUM = r"(?:[0-9]+(?:-[0-9]+)?|[一二三四五六七八九十百零〇两]+|[A-Za-z])"
_COMPONENT = rf"{_NUM}(?:号楼|号院|号(?![线窗文令])|幢|栋|座|单元|层|楼|室|户|组|弄|巷)"
_DETAIL = re.compile(rf"(?:{_COMPONENT})+(?:(?<=单元)[0-9]{{3,4}}(?![0-9]))?")
_PLACE_END = re.compile(
    r"(?:大道|大街|路|街|巷|弄|胡同|道|村|小区|花园|家园|公寓|大厦|广场|苑|府|城|园|里|湾|庄|社区|新村|中心|大楼|宿舍)$"
)
_ADMIN_CHARS = frozenset("省市县旗镇乡盟州")
_NOT_ADMIN = ("小区", "社区", "园区", "景区", "校区", "街区")
_PLACE_STOP = frozenset("在于住到往近从至与及或的是了把被请我你他她们为")
_MAX_PLACE_NAME = 10
# A word is no name when it or the character after it ends a place name (袁州区, 和平路, 云信镇).
_PLACE_CHARS = frozenset("省市区县旗镇乡村路街巷弄道苑府")

# Context that makes a common word a name: 叫张三, 业主王平, 王平先生.
_NAME_CUE_BEFORE = re.compile(
    r"(?:叫|名叫|姓名|本人|联系人|户主|业主|住户|居民|市民|租户|租客|房东|邻居|老板|店主|经理|师傅|老师|医生|"
    r"工作人员|网格员|负责人|家属|儿子|女儿|丈夫|妻子|父亲|母亲|同事|员工|保安|司机|是)[：: ]?$"
)
_NAME_CUE_AFTER = re.compile(r"^(?:先生|女士|师傅|老师|医生|经理|同志|反映|投诉|来电|称|说|表示)")
COMMON_WORD_FREQ = 100  # jieba dictionary frequency from which a registry name is also an ordinary word


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    kind: str


def halfwidth(text: str) -> str:
    return text.translate(_HALFWIDTH)


def _compact(number: str) -> str:
    return re.sub(r"[ -]", "", number).upper()


def is_resident_id_18(number: str) -> bool:
    """GB 11643 check digit and a real birth date between 1880 and today (python-stdnum)."""
    number = _compact(number)
    if len(number) != 18 or ric.calc_check_digit(number) != number[-1]:
        return False
    try:
        born = ric.get_birth_date(number)
    except Exception:  # noqa: BLE001 - stdnum raises InvalidComponent for an impossible date
        return False
    return born.year >= 1880 and born <= date.today()


def is_resident_id_15(number: str) -> bool:
    """A legacy ID has no check digit: its birth date 19YYMMDD must exist and its address code must be a
    county-level code of python-stdnum's division history (issued 1984-1999, so any year counts), which
    few other 15-digit numbers satisfy."""
    try:
        ric.get_birth_date(number[:6] + "19" + number[6:12] + "0000")
    except Exception:  # noqa: BLE001 - InvalidComponent: impossible date
        return False
    return _known_county(number[:6])


@cache
def _known_county(code: str) -> bool:
    from stdnum import numdb

    return any("county" in props for _part, props in numdb.get("cn/loc").info(code))


def is_bank_card(number: str) -> bool:
    digits = _compact(number)
    return 16 <= len(digits) <= 19 and luhn.is_valid(digits)


def _card_like(text: str, match: re.Match) -> bool:
    if not is_bank_card(match[0]):
        return False
    grouped = " " in match[0] or "-" in match[0]
    return (
        grouped
        or len(match[0]) in (16, 19)
        or bool(_CARD_CUE.search(text[max(0, match.start() - 8) : match.start()]))
    )


@lru_cache(maxsize=65536)
def _clause_tokens(clause: str) -> tuple[tuple[str, int, int], ...]:
    tokenizer, _ = _jieba()
    return tuple(tokenizer.tokenize(clause))


@cache
def _dictionary_surnames() -> frozenset[str]:
    """Surnames besides the registry's (a caller from elsewhere; a registry not loaded yet): the characters
    that start at least 30 of jieba's person names."""
    _, tags = _jieba()
    counts: dict[str, int] = {}
    for word, tag in tags.items():
        if tag == "nr" and 2 <= len(word) <= 3:
            counts[word[0]] = counts.get(word[0], 0) + 1
    return frozenset(c for c, k in counts.items() if k >= 30)


@cache
def _given_name_chars() -> frozenset[str]:
    """Characters that occur at least twice in the given names of jieba's person names: an unknown word
    the segmenter guessed is taken for a name only when all its given-name characters are among them."""
    _, tags = _jieba()
    counts: dict[str, int] = {}
    for word, tag in tags.items():
        if tag == "nr" and 2 <= len(word) <= 3:
            for c in word[1:]:
                counts[c] = counts.get(c, 0) + 1
    return frozenset(c for c, k in counts.items() if k >= 2)


@cache
def _jieba():
    """jieba's default tokenizer and its part-of-speech table, loaded once per process (about a second)."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba.dt, jieba.posseg.dt.word_tag_tab


class Scrubber:
    """Finds and masks personal data in free text. ``names``: the registry's person names (may be empty:
    then only the names jieba discovers are found)."""

    def __init__(self, names: Iterable[str] = ()):
        cleaned = {n.strip() for n in names if n and 2 <= len(n.strip()) <= 4}
        self.names = frozenset(n for n in cleaned if all("\u4e00" <= c <= "\u9fff" for c in n))
        self.surnames = frozenset(n[0] for n in self.names)

    # -- finding -------------------------------------------------------------------------------------------
    def find(self, text: str) -> list[Span]:
        """Every personal-data span in ``text``, non-overlapping, in order (earlier kinds of KINDS win)."""
        norm = halfwidth(text)
        spans = self._patterns(norm)
        if any("\u4e00" <= c <= "\u9fff" for c in norm):
            tokens = self._tokens(norm)
            spans += self._addresses(norm)
            spans += self._names(norm, tokens)
        return _resolve(spans)

    def _patterns(self, text: str) -> list[Span]:
        spans = [Span(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
        spans += [
            Span(m.start(), m.end(), "resident_id") for m in _ID18.finditer(text) if is_resident_id_18(m[0])
        ]
        spans += [
            Span(m.start(), m.end(), "resident_id") for m in _ID15.finditer(text) if is_resident_id_15(m[0])
        ]
        spans += [Span(m.start(), m.end(), "bank_card") for m in _CARD.finditer(text) if _card_like(text, m)]
        spans += [Span(m.start(), m.end(), "mobile") for m in _MOBILE.finditer(text)]
        spans += [Span(m.start(), m.end(), "landline") for m in _LANDLINE.finditer(text)]
        spans += [Span(m.start(1), m.end(1), "landline") for m in _LOCAL_NUMBER.finditer(text)]
        spans += [Span(m.start(), m.end(), "plate") for m in _PLATE.finditer(text)]
        return spans

    @staticmethod
    def _tokens(text: str) -> list[tuple[str, int, int]]:
        """jieba's tokens with their offsets, clause by clause: jieba never joins across punctuation, and
        clauses repeat between tickets (the complaint itself), so each is segmented once per process."""
        tokens = []
        for m in _CLAUSE.finditer(text):
            tokens += [(w, m.start() + a, m.start() + b) for w, a, b in _clause_tokens(m[0])]
        return tokens

    def _addresses(self, text: str) -> list[Span]:
        spans = []
        for m in _DETAIL.finditer(text):
            start = self._place_start(text, m.start())
            components = re.findall(_COMPONENT, m[0])
            if start is None:  # no road or compound before: only a building/unit/room chain counts
                if len(components) < 2 and not m[0].endswith(("室", "户")):
                    continue
                if len(components) == 1 and not re.search(r"(?:幢|栋|号楼|单元)", m[0]):
                    continue
                start = m.start()
            spans.append(Span(start, m.end(), "address"))
        return spans

    @staticmethod
    def _place_start(text: str, at: int) -> int | None:
        """Where the road, compound or village name ending at ``at`` starts (None when nothing there ends
        like one): back over Chinese characters to punctuation, a particle (在, 于, 住 …), an administrative
        division's last character (省 市 区 县 旗 镇 乡, 街道) or _MAX_PLACE_NAME characters."""
        if not _PLACE_END.search(text[max(0, at - 4) : at]):
            return None
        start = at
        while start > 0 and at - start < _MAX_PLACE_NAME:
            char = text[start - 1]
            if not "\u4e00" <= char <= "\u9fff" or char in _PLACE_STOP:
                break
            if char in _ADMIN_CHARS and at - start >= 2:
                break
            if char == "区" and text[start - 2 : start] not in _NOT_ADMIN and at - start >= 2:
                break
            if text[start - 2 : start] == "街道" and at - start >= 2:
                break
            start -= 1
        return start if at - start >= 2 else None

    def _names(self, text: str, tokens: list[tuple[str, int, int]]) -> list[Span]:
        tokenizer, tags = _jieba()
        spans = []
        i = 0
        while i < len(text):
            if text[i] in self.surnames:
                for length in (4, 3, 2):
                    word = text[i : i + length]
                    if len(word) == length and (
                        word in self.names
                        and not self._placeish(text, i, i + length)
                        and (not self._common(word, tokenizer) or self._cued(text, i, i + length))
                    ):
                        spans.append(Span(i, i + length, "name"))
                        i += length - 1
                        break
            i += 1
        # Names outside the registry: jieba's unknown words (found by its HMM) and its name-tagged words that
        # start with a surname; a surname token followed by a name-tagged given name (孙/海燕).
        for k, (word, start, end) in enumerate(tokens):
            if not all("\u4e00" <= c <= "\u9fff" for c in word) or word[0] in _PLACE_CHARS:
                continue
            if len(word) == 1 and self._surname(word, tags) and k + 1 < len(tokens):
                given, _, given_end = tokens[k + 1]
                if 1 <= len(given) <= 2 and self._name_like(given, tags, tokenizer, text, start, given_end):
                    spans.append(Span(start, given_end, "name"))
            elif (
                2 <= len(word) <= 3
                and self._surname(word[0], tags)
                and self._name_like(word, tags, tokenizer, text, start, end)
            ):
                spans.append(Span(start, end, "name"))
        return spans

    def _surname(self, char: str, tags) -> bool:
        return char in self.surnames or char in _dictionary_surnames()

    def _name_like(self, word: str, tags, tokenizer, text: str, start: int, end: int) -> bool:
        """An unknown word (jieba's HMM found it), or a name-tagged word that is rare or has a cue."""
        if not all("\u4e00" <= c <= "\u9fff" for c in word) or self._placeish(text, start, end):
            return False
        if start > 0 and (text[start - 1].isdigit() or text[start - 1] == "号"):
            return False  # a numbered thing (3号门岗), not a person
        if word not in tokenizer.FREQ:
            given = word[2:] if word[:2] in tokenizer.FREQ and len(word) == 4 else word[1:]
            return all(c in _given_name_chars() for c in given) or self._cued(text, start, end)
        return tags.get(word, "").startswith("nr") and (
            not self._common(word, tokenizer) or self._cued(text, start, end)
        )

    @staticmethod
    def _placeish(text: str, start: int, end: int) -> bool:
        """Part of a place name: it ends one, the next characters do (和平|路), or it starts with the last
        character of one (安北路|东侧)."""
        closes_before = text[start] in _PLACE_CHARS and start > 0 and "\u4e00" <= text[start - 1] <= "\u9fff"
        return (
            closes_before
            or text[end - 1] in _PLACE_CHARS
            or text[end : end + 1] in _PLACE_CHARS
            or bool(_PLACE_END.match(text[end : end + 2]))
        )

    @staticmethod
    def _common(word: str, tokenizer) -> bool:
        return tokenizer.FREQ.get(word, 0) >= COMMON_WORD_FREQ

    @staticmethod
    def _cued(text: str, start: int, end: int) -> bool:
        return bool(_NAME_CUE_BEFORE.search(text[max(0, start - 6) : start])) or bool(
            _NAME_CUE_AFTER.match(text[end : end + 3])
        )

    # -- masking -------------------------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """``text`` with every span of ``find`` masked (see ``mask``)."""
        spans = self.find(text)
        if not spans:
            return text
        norm = halfwidth(text)
        out, last = [], 0
        for span in spans:
            out += [text[last : span.start], mask(norm[span.start : span.end], span.kind)]
            last = span.end
        out.append(text[last:])
        return "".join(out)


def mask(value: str, kind: str) -> str:
    """The display form of one span: what an analyst may still see.

    IDs and bank cards keep the first 6 and last 4 characters (the issuing region or bank, as on a receipt);
    mobiles the first 3 and last 4 (cb_mask_phone); landlines their area code or 400/800 prefix and last 4
    digits; e-mail the first character and the domain; plates the province and authority letter; names the
    first character (the surname: 张*); addresses become [地址]."""
    if kind in ("resident_id", "bank_card"):
        digits = _compact(value)
        return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
    if kind == "mobile":
        digits = re.sub(r"[^0-9]", "", value)[-11:]
        return digits[:3] + "****" + digits[-4:]
    if kind == "landline":
        m = re.match(rf"[(（]?(?:{_AREA}|[48]00)[)）]?[ -]?", value)
        head = m[0] if m and len(value) > 8 else ""
        rest = value[len(head) :]
        ext = re.search(r"转|分机|ext\.? ?|(?<=[0-9]{7})-", rest)
        number, sep, extension = (rest[: ext.start()], ext[0], rest[ext.end() :]) if ext else (rest, "", "")
        digits = re.sub(r"[^0-9]", "", number)
        return head + "*" * (len(digits) - 4) + digits[-4:] + sep + "*" * len(extension)
    if kind == "email":
        local, _, domain = value.partition("@")
        return local[0] + "***@" + domain
    if kind == "plate":
        return value[:2] + "*****"
    if kind == "name":
        return value[0] + "*" * (len(value) - 1)
    return ADDRESS_PLACEHOLDER


def _resolve(spans: list[Span]) -> list[Span]:
    """Overlaps go to the kind listed first in KINDS (a valid ID over a Luhn-valid card, e-mail over a mobile
    in its local part); the rest in text order."""
    rank = {k: i for i, k in enumerate(KINDS)}
    taken: list[Span] = []
    for span in sorted(spans, key=lambda s: (rank[s.kind], s.start, -s.end)):
        if all(span.end <= t.start or span.start >= t.end for t in taken):
            taken.append(span)
    return sorted(taken)
