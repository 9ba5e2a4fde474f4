"""The transaction's decisions, free of I/O.

Nothing under this package imports trio, sockets, sqlite or threads (tests/test_layout.py holds
it to that): it takes values and returns values, and the running service (switch.service and
the modules around it) performs what it decides. Read `pipeline.py` first: it lists the steps
of every transaction in order.
"""
