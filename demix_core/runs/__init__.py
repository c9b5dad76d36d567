"""Your past runs: tables of mixture runs (RegMix, Olmix or plain CSV) imported as a table workspace and a study.

``tables`` reads and checks the CSV files, ``objectives`` picks and orients the metrics a study optimises,
``table_study`` is how an imported run sits in an Optuna study (and how it is read back), ``importer`` is
``demix import-runs``, ``noise`` turns repeated mixtures into a noise floor, and ``advice`` reads a
recommendation on a table study (raw predictions, a fit label per target, the noise floor).
"""
