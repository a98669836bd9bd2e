"""Hypothesis strategies for the property-based integrity suite (issue 16).

One module per type family (:mod:`.text`, :mod:`.numbers`, :mod:`.temporal`, :mod:`.structured`),
the schemas and tables the properties write to (:mod:`.schemas`), whole rows (:mod:`.rows`) and
the equality the properties assert (:mod:`.compare`). Generated values are what each column can
hold; values it cannot hold live in ``tests/integration/test_integrity_props_invalid.py``.
"""
