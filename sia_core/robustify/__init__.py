"""SIA's applications: adversarial training that should transfer to other attacks (the transfer table), and
augmentation of under-represented classes (the imbalance study)."""

from sia_core.robustify.imbalance import (IMBALANCE_METHODS, ImbalanceConfig, ImbalanceReport, MethodRun, MethodSummary,
                                          run_imbalance_study)
from sia_core.robustify.long_tail import (class_counts, inverse_frequency_weights, long_tailed, long_tailed_counts,
                                          oversampled, with_minority_variants)
from sia_core.robustify.transfer import (TRANSFER_COLUMNS, TransferCell, TransferConfig, TransferRow, TransferTable,
                                         transfer_table)

__all__ = ["IMBALANCE_METHODS", "ImbalanceConfig", "ImbalanceReport", "MethodRun", "MethodSummary", "TRANSFER_COLUMNS",
           "TransferCell", "TransferConfig", "TransferRow", "TransferTable", "class_counts", "inverse_frequency_weights", "long_tailed", "long_tailed_counts",
           "oversampled", "run_imbalance_study", "transfer_table", "with_minority_variants"]
