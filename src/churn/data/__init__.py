"""Stage 1 — the data: reading exports, the data contract, where the data ends, who is a customer.

Modules: ``io`` (atomic writes of tables and text), ``frames`` (small pandas helpers),
``read`` (finding and reading a table, only the columns and time range needed),
``parse`` (cells written as text → values), ``rules`` (the row rules, stated once),
``contract`` (validate, reject with reasons, load), ``dataend`` (the end of the data and the
freshness check), ``population`` (who is a customer at T, and which events count as
activity), ``attributes`` (which account attributes are honest at a cutoff, and their
values there) and ``synthetic`` (the built-in synthetic business behind ``churn generate``).

Imports: :mod:`churn.config` only — nothing of a later stage.
"""
