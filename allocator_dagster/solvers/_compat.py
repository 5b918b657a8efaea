"""Keep cvxpy and OR-Tools in one process.

OR-Tools 9.15 bundles HiGHS 1.12 as `libhighs.so.1`, the same soname highspy ships; whichever
loads first serves both, so highspy is pinned to 1.12.0 (constraints.txt) and cvxpy to 1.8.2, the
newest release that accepts it. cvxpy 1.8 also probes its own GLOP/PDLP wrappers, which expect
an older OR-Tools; we use OR-Tools directly (CP-SAT), so that one probe's warning is dropped.
"""

from __future__ import annotations

import logging


class _DropOrtoolsProbe(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("importing solver" in message and ("GLOP" in message or "PDLP" in message))


logging.getLogger("__cvxpy__").addFilter(_DropOrtoolsProbe())
