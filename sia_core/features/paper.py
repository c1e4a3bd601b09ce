"""The paper's CIFAR-10 numbers (Ilyas et al. 2019), shown beside ours and labelled as the
paper's; keyed by constructed-set kind, and "d" for the original training set."""

from __future__ import annotations

PAPER_CIFAR10 = {
    "d": {"test_accuracy": 0.953, "robust_accuracy_l2_0.25": 0.0449, "robust_accuracy_l2_0.5": 0.0,
          "source": "Table 1 / Table 7"},
    "d_rand": {"test_accuracy": 0.633, "robust_accuracy_l2_0.25": None, "robust_accuracy_l2_0.5": None,
               "source": "Table 1"},
    "d_det": {"test_accuracy": 0.437, "robust_accuracy_l2_0.25": None, "robust_accuracy_l2_0.5": None,
              "source": "Table 1"},
    "d_r": {"test_accuracy": 0.854, "robust_accuracy_l2_0.25": 0.482, "robust_accuracy_l2_0.5": 0.2185,
            "source": "Table 7"},
    "d_nr": {"test_accuracy": 0.8768, "robust_accuracy_l2_0.25": 0.0082, "robust_accuracy_l2_0.5": 0.0,
             "source": "Table 7"},
}

# the same relabelled sets built from a robust model instead (Tables 9 and 10): they teach far less of the true label,
# and D̂_det's model follows the permuted labels (y + 1) mod C
PAPER_ROBUST_SOURCE = {
    "d_det": {"test_accuracy": 0.058, "relabelled_test_accuracy": 0.655, "source": "Table 9 / Table 10"},
    "d_rand": {"test_accuracy": 0.252, "source": "Table 9"},
}
