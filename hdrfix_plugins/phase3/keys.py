"""phase3's config keys and defaults, read by the phase and written into the trainer."""

LOSSES = ("histogram", "moment", "sparsity", "none")
DEFAULT_LOSS = "histogram"
DEFAULT_WEIGHT = 0.5
LOSS_KEY = "residual_distribution_loss"
WEIGHT_KEY = "residual_distribution_weight"
SUPERVISION_WEIGHT_KEY = "log_supervision_weight"
SUPERVISION_ENABLE_KEY = "log_supervision_enable"
