"""docs/pbx.md quotes what is tested: its Kamailio blocks are the config the Kamailio test runs, and
its XML recipes (FreeSWITCH, 3CX) are well-formed XML a PBX can load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from defusedxml import ElementTree

from .kamailio import CONFIG

DOC = Path(__file__).resolve().parent.parent / "docs" / "pbx.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), re.S | re.M)


def test_the_kamailio_route_quoted_is_the_tested_config():
    config = CONFIG.read_text()
    quoted = blocks("kamailio")
    assert len(quoted) == 2
    for block in quoted:
        assert block in config


@pytest.mark.parametrize("index", range(3))
def test_the_xml_recipes_are_well_formed(index):
    recipes = blocks("xml")
    assert len(recipes) == 3
    ElementTree.fromstring(recipes[index].encode())


def test_every_recipe_holds_a_lookup_key_placeholder_not_a_full_key():
    text = DOC.read_text() + CONFIG.read_text()
    keys = set(re.findall(r"api_key=([\w-]+)", text))
    assert keys == {"LOOKUP-KEY"}
