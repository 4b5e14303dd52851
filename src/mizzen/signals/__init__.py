"""Signals: the product's metrics, defined once in `mizzen.yaml` (`signals:`), computed by
mizzen per time bucket into a Delta table in the project store, split by experiment arm with
confidence intervals, watched by alerts, shown by `mizzen signals` and the dashboard.

`model` imports only pydantic and the spec's models (`mizzen validate` builds it); the rest
imports DuckDB, deltalake and pyarrow (the `mizzen[datasets]` extra) when first used."""

import mizzen.spec.models  # noqa: F401  (first: the signal model builds on the spec's models)
