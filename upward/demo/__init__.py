"""The demo: a synthetic enterprise (:mod:`upward.demo.enterprise`) to run Upward on.

The enterprise generator gives an org chart with reporting lines, grades, regions, time
zones, languages, skills and learning goals; from it come a program definition, the join
requests of a cohort and an HR CSV export (the input of ``upward import participants``).
"""
