"""YARA: one section per matching rule, scored by the rule's own metadata.

The rule set arrives through the SDK's rule mechanism (`set_rules` -> `load_rules`): at start the
bundled rules under rules/, later whatever the updater downloads. A rule set that does not
compile raises, so the service keeps matching with the rules it had.
"""

from __future__ import annotations

import yara

from services.sdk import Request, Result, ResultSection, ServiceBase
from services.yara.report import match_section
from services.yara.ruleset import bundled_rule_files, compile_rules


class Yara(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.match_timeout = int(self.config.get("match_timeout", 60))
        self.max_strings = int(self.config.get("max_strings_per_rule", 10))
        self.rules: yara.Rules | None = None

    def start(self) -> None:
        if self.rules is None:
            self.set_rules(bundled_rule_files())

    def load_rules(self, rules_paths: list[str]) -> None:
        # Compiled first and swapped in one assignment: a task running meanwhile keeps the set it began with.
        self.rules = compile_rules(rules_paths)

    def execute(self, request: Request) -> None:
        request.result = result = Result()
        rules = self.rules
        if rules is None:
            raise RuntimeError("no YARA rules loaded: start() was not called")
        try:
            matches = rules.match(data=request.file_contents, timeout=self.match_timeout)
        except yara.TimeoutError:
            result.add_section(ResultSection(
                "YARA scan timed out", f"Matching did not finish within {self.match_timeout}s; no rule results for this file."))
            return
        except yara.Error as exc:
            result.add_section(ResultSection("YARA scan failed", f"{type(exc).__name__}: {exc}"))
            return
        for match in matches:
            result.add_section(match_section(match, self.max_strings))
