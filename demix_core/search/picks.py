"""How a recommendation is picked, as plain constants (the CLI's help reads them without loading numpy).

``mean`` averages the top k ranked candidates (the paper); ``best`` takes the single best candidate; ``trial`` the
best measured trial. ``DEFAULT_CONFIDENCE`` is the one-sided level of the lower bound ``recommend --against``
judges candidates on.
"""

PICKS = ("mean", "best", "trial")
DEFAULT_PICK = "mean"
DEFAULT_CONFIDENCE = 0.8
BEATS = ("every", "some", "total")  # recommend --against: by the floor on every domain; on one, losing none; the total
