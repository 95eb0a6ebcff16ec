"""The disclosure rule a configuration asks for."""

from __future__ import annotations

from din.config import Config
from transforms.disclosure import DisclosureRule


def disclosure_rule(config: Config) -> DisclosureRule:
    return DisclosureRule.from_config(config.disclosure)
