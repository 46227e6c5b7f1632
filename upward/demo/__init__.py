"""The demo: a reverse mentoring program on a synthetic cohort through simulated time.

``scenario`` drives the running services, ``platform`` reaches them (HTTP, stores, Kafka),
``summary`` reads back what happened, ``cohort`` supplies the program and its people,
``commands`` is ``upward demo``.
"""
