"""The open-tier scanner finds each kind of leak in a planted file, so a clean result means something.

It runs on a real published demo lake in tests/test_quality_gate.py (that lake's good night publishes)."""

from __future__ import annotations

import duckdb

from citybrain.access.pii_scan import scan_tier_file


def test_the_scanner_finds_planted_leaks(tmp_path):
    path = tmp_path / "planted.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA pool")
        con.execute(
            "CREATE TABLE pool.t AS SELECT * FROM (VALUES "
            "('ok', '居民 11010519491231002X 来电', 1), "  # a valid ID number in free text
            "('ok', '电话 138-1234-5678', 2), "  # a mobile with dashes
            "('欧阳明', 'fine', 3), "  # a registry name as a whole cell
            "('ok', '投诉人欧阳明华反映', 4), "  # a 3-character registry name inside free text
            "('ok', '110105194912310021', 5), "  # bad check digit: not an ID number
            "('ok', '8a309a4c2d13812345678ff', 6), "  # digits inside a hex token: not a phone
            "('王芳', 'ok', 7)"  # a 2-character name is only matched as a whole cell...
            ") AS v(a, b, n)"
        )
        con.execute("CREATE TABLE pool.u AS SELECT '王芳的邻居' AS note")  # ...not inside text
        con.execute(
            "CREATE TABLE pool.v AS SELECT * FROM (VALUES "
            "('投诉人住文华路12号3幢2单元501室'), "  # a home down to the room
            "('阳光花园7栋1102室漏水'), "  # building and room, no unit
            "('浙江省杭州市西湖区文华路123号'), "  # a house number alone: facilities publish theirs
            "('3号楼大厅')"  # a building alone: no one's home
            ") AS v(place)"
        )
    findings = scan_tier_file(path, ["欧阳明", "王芳", "李"])
    kinds = sorted((f.kind, f.match) for f in findings)
    assert kinds == [
        ("dwelling", "3幢2单元501室"),
        ("dwelling", "7栋1102室"),
        ("mobile", "13812345678"),
        ("registry_name", "欧阳明"),
        ("registry_name", "欧阳明"),
        ("registry_name", "王芳"),
        ("resident_id", "11010519491231002X"),
    ], [str(f) for f in findings]
