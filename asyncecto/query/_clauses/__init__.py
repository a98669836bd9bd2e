"""The query builder: one module per clause (as Ecto's ``Ecto.Query.Builder.*``).

Each step returns a new :class:`~asyncecto.query.Query`; the public names are re-exported by ``asyncecto.query``.
"""
