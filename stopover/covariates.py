"""Re-export of `stopover.typology.covariates` (its old import path, kept for callers)."""

from __future__ import annotations

from stopover.typology.covariates import (
                                          COLUMNS,
                                          FERTILITY_COLUMNS,
                                          RESOURCE_LEVELS,
                                          cc100_table,
                                          covariates,
                                          fertility,
                                          pretrain_gib,
                                          read_fertility_table,
                                          resource_level,
                                          write_fertility_table,
)

__all__ = ["COLUMNS", "FERTILITY_COLUMNS", "RESOURCE_LEVELS", "cc100_table", "covariates", "fertility",
           "pretrain_gib", "read_fertility_table", "resource_level", "write_fertility_table"]
