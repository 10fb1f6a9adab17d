"""phase2: a learnable ``residual_output_scale`` on the network, Mode A rewritten to use it,
and ``hdrfix migrate-checkpoint`` for checkpoints saved before.

This module is the phase's declaration, light enough for ``--help`` and ``hdrfix list``:

- ``phase`` the plan (network parameter, forward bound, Mode A rewrite);
- ``network`` finding and bounding what ``PatchNetwork.forward`` returns;
- ``scale`` the parameter's name and starting value, shared with the checkpoint migration;
- ``checkpoint`` and ``command`` the migration (torch only there).
"""

from hdrfix.core.plugin import Phase
from hdrfix_plugins.phase2 import scale
from hdrfix_plugins.phase2.command import migrate_checkpoint


class Phase2(Phase):
    name = "phase2"
    summary = "learnable residual_output_scale: PatchNetwork returns tanh * scale, Mode A uses it"
    requires = ("phase1",)
    options = (scale.SCALE_INIT,)
    commands = (migrate_checkpoint,)
    network_parameters = (scale.PARAM,)
    planner = "hdrfix_plugins.phase2.phase:plan"


__all__ = ["Phase2"]
