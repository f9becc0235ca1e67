"""The table of databases: every entry has a reader, ids find their database."""

import importlib

import pytest

from data_builders import convert, long_videos, synthetic, synthetic_long
from vqa import databases
from vqa.databases import DATABASES


@pytest.mark.parametrize("name", sorted(DATABASES))
def test_every_database_has_a_reader_that_convert_offers(name):
    if DATABASES[name].long:
        assert name in long_videos.SPECS
    else:
        assert callable(importlib.import_module(f"data_builders.{name}").read_clips)
    args = convert.build_parser().parse_args([name, "--frames", "f", "--out", "o"])
    assert args.database == name


def test_synthetic_databases_are_known_ones():
    assert set(synthetic.DATABASES) <= set(DATABASES)
    assert set(synthetic_long.LONG_DATABASES) <= {n for n, db in DATABASES.items() if db.long}


def test_an_id_names_its_database_longest_name_first():
    assert databases.of_id("SAMM_006_1_2_1") == "samm"
    assert databases.of_id("casme3_spNO.1_e_62_1") == "casme3"
    assert databases.of_id("casme_x") is None and databases.of_id("samm") is None
    assert databases.of_id("samm_lv_001_1") == "samm_lv"
    assert databases.of_id("samm_006_1_2_1") == "samm"


def test_titles():
    assert databases.title("casme3") == "CAS(ME)^3" and databases.title("dfme") == "dfme"
