"""The source catalog: the shipped one is valid; mistakes are reported by feed id and field."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from citybrain import settings
from citybrain.catalog import CatalogError, parse_catalog

RAW = yaml.safe_load(settings.catalog_path().read_text(encoding="utf-8"))


def test_shipped_catalog_lists_every_delivery_kind(catalog):
    kinds = {f.delivery.kind for f in catalog.feeds}
    assert kinds == {"csv", "jsonl", "xlsx", "parquet", "sql", "http"}
    for feed in catalog.feeds:
        assert feed.title.zh and feed.title.en
        assert feed.provider in catalog.providers
        for column in feed.columns:
            assert column.classification in ("open", "conditional", "restricted")
            assert column.description


def _broken(mutate) -> str:
    raw = copy.deepcopy(RAW)
    mutate(raw)
    with pytest.raises(CatalogError) as info:
        parse_catalog(raw, "sources.yaml")
    return str(info.value)


def _feed(raw, feed_id):
    return next(f for f in raw["feeds"] if f["id"] == feed_id)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda r: _feed(r, "schools")["delivery"].update(encoding="utf9"),
            "feed 'schools' (feeds[3]): delivery: encoding: unknown encoding 'utf9'",
        ),
        (
            lambda r: _feed(r, "household_registry").update(key=["nope"]),
            "feed 'household_registry' (feeds[0]): key: ['nope'] not among the columns",
        ),
        (
            lambda r: _feed(r, "medical_facilities")["columns"][1].update(classification="secret"),
            "feed 'medical_facilities' (feeds[2]): columns[1] (name).classification",
        ),
        (
            lambda r: _feed(r, "legal_entities")["columns"][0].pop("classification"),
            "feed 'legal_entities' (feeds[1]): columns[0] (uscc).classification: Field required",
        ),
        (lambda r: _feed(r, "schools")["delivery"].update(kind="ftp"), "feed 'schools' (feeds[3]): delivery"),
        (
            lambda r: _feed(r, "egov_applications")["delivery"].update(path="egov/applications.csv"),
            "feed 'egov_applications'",
        ),
        (
            lambda r: _feed(r, "schools")["delivery"].update(path="../../etc/passwd"),
            "must be relative to the landing zone",
        ),
        (lambda r: _feed(r, "schools").update(cadence="sometimes"), "feed 'schools' (feeds[3]): cadence"),
        (
            lambda r: _feed(r, "schools").update(provider="NOPE"),
            "feed 'schools' (feeds[3]): provider: unknown provider 'NOPE'",
        ),
        (
            lambda r: _feed(r, "si_unit")["delivery"].update(connection="nowhere"),
            "feed 'si_unit' (feeds[4]): delivery.connection: unknown connection 'nowhere'",
        ),
        (lambda r: r["feeds"].append(copy.deepcopy(_feed(r, "schools"))), "id: duplicated feed id"),
        (
            lambda r: _feed(r, "schools").update(colour="blue"),
            "feed 'schools' (feeds[3]): colour: Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_entry_names_feed_and_field(mutate, expected):
    assert expected in _broken(mutate)


def test_several_problems_are_reported_together():
    def mutate(raw):
        _feed(raw, "schools")["delivery"]["encoding"] = "utf9"
        _feed(raw, "household_registry")["key"] = ["nope"]

    message = _broken(mutate)
    assert "feed 'schools'" in message and "feed 'household_registry'" in message


def test_definitions_load_fails_with_the_catalog_message(tmp_path):
    raw = copy.deepcopy(RAW)
    _feed(raw, "schools")["delivery"]["encoding"] = "utf9"
    bad = tmp_path / "sources.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", "import orchestration.definitions"],
        env={"CITYBRAIN_CATALOG": str(bad), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        cwd=settings.REPO_ROOT,
    )
    assert proc.returncode != 0
    assert "feed 'schools' (feeds[3]): delivery: encoding: unknown encoding 'utf9'" in proc.stderr


def test_cli_validate(tmp_path, capsys):
    from orchestration.cli import main

    assert main(["catalog", "validate"]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nfeeds: []\n", encoding="utf-8")
    assert main(["catalog", "validate", str(bad)]) == 2


def test_operators_are_declared_with_china_broadnet(catalog):
    assert set(catalog.operators) == {"CMCC", "CUCC", "CTCC", "CBN"}
    assert catalog.operators["CBN"].name == "中国广电"
    assert [f.id for f in catalog.operator_feeds("od")] == ["operator_a_od", "operator_b_od", "operator_c_od"]
    assert _feed(RAW, "operator_c_presence")["operator_feed"]["cell_sites"] == "operator_c_cells"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda r: _feed(r, "operator_a_od")["operator_feed"].update(operator="CMC"),
            "feed 'operator_a_od' (feeds[12]): operator_feed.operator: unknown operator 'CMC'; declared in "
            "`operators`: ['CBN', 'CMCC', 'CTCC', 'CUCC']",
        ),
        (
            lambda r: _feed(r, "operator_b_presence")["operator_feed"].pop("operator"),
            "feed 'operator_b_presence' (feeds[9]): operator_feed: operator: a presence feed must name its operator",
        ),
        (
            lambda r: _feed(r, "operator_a_presence")["operator_feed"].pop("unit"),
            "feed 'operator_a_presence' (feeds[8]): operator_feed: unit: a presence feed needs its spatial unit",
        ),
        (
            lambda r: _feed(r, "operator_c_presence")["operator_feed"].update(cell_sites="operator_c_od"),
            "operator_feed.cell_sites: 'operator_c_od' is not a feed with operator_feed kind cell_sites",
        ),
        (
            lambda r: _feed(r, "operator_c_cells")["operator_feed"].update(operator="CMCC"),
            "operator_feed.cell_sites: 'operator_c_cells' is CMCC's, not CTCC's",
        ),
        (
            lambda r: _feed(r, "operator_market_share")["operator_feed"].update(operator="CMCC"),
            "operator_feed: operator: a market_share feed covers every operator",
        ),
        (lambda r: r.pop("operators"), "operator_feed.operator: unknown operator 'CMCC'"),
    ],
)
def test_invalid_operator_feed_is_reported(mutate, expected):
    assert expected in _broken(mutate)
