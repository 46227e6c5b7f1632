"""Pure domain of the matching service: the matching engine and the pair rules.

No I/O and no asyncio here. The engine's public surface is
:mod:`services.matching.domain.model` (data types) and
:mod:`services.matching.domain.engine` (``plan_matching``, ``check_pair``, ``score_pair``).
"""
