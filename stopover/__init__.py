"""stopover: English intermediate-task training (STILTs) and zero-shot cross-lingual transfer.

The package root owns only the version string; importing it must stay cheap
(no torch, no transformers) so that `stopover tasks` and the typology and
analysis code start fast.
"""

__version__ = "0.1.0"
