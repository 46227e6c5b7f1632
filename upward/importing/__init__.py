"""``upward import participants``: join a cohort from an HR CSV export, exactly once.

* :mod:`upward.importing.mapping`: which CSV column feeds which field, and how lists are
  written (defaults fit a typical HRIS export; a TOML or JSON file renames columns).
* :mod:`upward.importing.rows`: read the CSV and validate each row into the join body
  (ParticipantJoined), keeping line numbers; resolve reporting lines within the file.
* :mod:`upward.importing.matching_api`: the matching service's HTTP API, as the tool uses it.
* :mod:`upward.importing.importer`: join the good rows, skip those already imported, report
  refusals per row.
* :mod:`upward.importing.commands`: the typer command, rich progress and report.
"""
