"""``python -m projections``: the projector worker (``commerce-gateway project``).

A process entry point, not part of the package's code: like every process
root it composes the stores through ``gateway.bootstrap``, which is why it is
the one module here that imports the gateway.
"""

import sys

from gateway.cli.main import main

sys.exit(main(["project", *sys.argv[1:]]))
