"""The demo: a reverse mentoring program on a synthetic enterprise through simulated time.

``enterprise`` generates the enterprise (org chart with reporting lines, grades, regions,
time zones, languages, skills and learning goals) and from it a program definition, the
join requests of a cohort and an HR CSV export (the input of ``upward import participants``);
``scenario`` drives the running services, ``platform`` reaches them (HTTP, stores, Kafka),
``summary`` reads back what happened, ``cohort`` supplies the program and its people,
``commands`` is ``upward demo``.
"""
