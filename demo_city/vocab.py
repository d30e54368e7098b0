"""Word pools for names and addresses, sampled with numpy so a million residents need no Python loop.

Person names come from faker's zh_CN person provider (its surname frequencies and given names); street
and company names are composed from neutral syllables so they fit any configured city.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from faker.providers.person.zh_CN import Provider as PersonNames

STREET_SYLLABLES = list("文学建新和平安康兴华明光阳春秋东西南北中长永福泰瑞丰荣昌宁德信仁景云湖江河山林桥")
STREET_SUFFIXES = ["路", "街", "大道", "巷", "弄"]
STREET_SUFFIX_WEIGHTS = [0.55, 0.25, 0.08, 0.08, 0.04]
BRAND_SYLLABLES = list("华信达通恒泰瑞丰嘉盛鼎源宏远佳联创诚天正博亿金银海润鑫隆汇合美新智云数星辰")

# GB/T 4754 sections with a word for the company name and a relative frequency among enterprises.
INDUSTRIES = {
    "A": (["农业开发", "生态农业"], 0.02),
    "C": (["机械制造", "电子科技", "纺织", "新材料"], 0.14),
    "D": (["能源", "电力工程"], 0.01),
    "E": (["建设工程", "建筑装饰"], 0.08),
    "F": (["商贸", "贸易", "供应链管理"], 0.26),
    "G": (["物流", "运输"], 0.05),
    "H": (["餐饮管理", "酒店管理"], 0.06),
    "I": (["网络科技", "信息技术", "软件"], 0.12),
    "J": (["投资管理"], 0.01),
    "K": (["物业管理", "房地产开发"], 0.03),
    "L": (["企业管理咨询", "人力资源"], 0.08),
    "M": (["技术服务", "检测技术"], 0.05),
    "N": (["环境工程"], 0.01),
    "O": (["家政服务"], 0.02),
    "P": (["教育科技"], 0.02),
    "Q": (["医疗管理"], 0.01),
    "R": (["文化传媒"], 0.03),
}
ENTITY_TYPES = {
    "有限责任公司(自然人投资或控股)": ("有限公司", 0.62),
    "有限责任公司(自然人独资)": ("有限公司", 0.18),
    "股份有限公司(非上市、自然人投资或控股)": ("股份有限公司", 0.05),
    "有限责任公司(国有独资)": ("有限公司", 0.02),
    "个人独资企业": ("商行", 0.08),
    "有限合伙企业": ("合伙企业(有限合伙)", 0.05),
}


@cache
def surnames() -> tuple[np.ndarray, np.ndarray]:
    names = np.array(list(PersonNames.last_names.keys()), dtype=object)
    weights = np.array(list(PersonNames.last_names.values()), dtype=float)
    return names, weights / weights.sum()


def given_names(male: bool) -> np.ndarray:
    return np.array(PersonNames.first_names_male if male else PersonNames.first_names_female, dtype=object)


def person_names(rng: np.random.Generator, male: np.ndarray, surname: np.ndarray | None = None) -> np.ndarray:
    """Full names for people of the given sexes; ``surname`` (optional) fixes family names."""
    n = len(male)
    if surname is None:
        pool, p = surnames()
        surname = pool[rng.choice(len(pool), n, p=p)]
    m, f = given_names(True), given_names(False)
    given = np.where(male, m[rng.integers(0, len(m), n)], f[rng.integers(0, len(f), n)])
    return surname + given


def given_names_arrow(rng: np.random.Generator, male: np.ndarray) -> pa.Array:
    """``person_names``'s given names (same draws, same order) as Arrow text, for millions of people."""
    n = len(male)
    m, f = given_names(True), given_names(False)
    pick_m, pick_f = rng.integers(0, len(m), n), rng.integers(0, len(f), n)
    return pc.if_else(
        pa.array(np.asarray(male, dtype=bool)),
        pa.array(m, pa.string()).take(pick_m),
        pa.array(f, pa.string()).take(pick_f),
    )


@cache
def ethnic_groups() -> tuple[np.ndarray, np.ndarray]:
    """cpca's list of the 56 ethnic groups (census order); 汉族 ~98.5 %, minorities by Zipf weights."""
    groups = (files("cpca") / "resources" / "56_nations.csv").read_text("utf-8").split()
    weights = np.array([0.985] + [1.0 / (i + 1) for i in range(len(groups) - 1)])
    weights[1:] *= 0.015 / weights[1:].sum()
    return np.array(groups, dtype=object), weights


def streets(rng: np.random.Generator, count: int) -> np.ndarray:
    syl = np.array(STREET_SYLLABLES, dtype=object)
    suffix = np.array(STREET_SUFFIXES, dtype=object)[
        rng.choice(len(STREET_SUFFIXES), count, p=STREET_SUFFIX_WEIGHTS)
    ]
    names = syl[rng.integers(0, len(syl), count)] + syl[rng.integers(0, len(syl), count)] + suffix
    return np.unique(names)


def brands(rng: np.random.Generator, count: int) -> np.ndarray:
    syl = np.array(BRAND_SYLLABLES, dtype=object)
    return syl[rng.integers(0, len(syl), count)] + syl[rng.integers(0, len(syl), count)]
