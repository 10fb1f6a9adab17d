"""phase2: a learnable ``residual_output_scale`` on the network, Mode A rewritten to use it,
and ``hdrfix migrate-checkpoint`` for checkpoints saved before.

- ``phase`` the Phase (plan: network parameter, forward bound, Mode A rewrite);
- ``network`` finding and bounding what ``PatchNetwork.forward`` returns;
- ``scale`` the parameter's name and starting value, shared with the checkpoint migration;
- ``checkpoint`` and ``command`` the migration (torch only there).
"""

from hdrfix_plugins.phase2.phase import Phase2

__all__ = ["Phase2"]
