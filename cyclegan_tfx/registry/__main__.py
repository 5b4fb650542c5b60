"""`python -m cyclegan_tfx.registry ...`: the registry's command line (see :mod:`.cli`)."""

import sys

from cyclegan_tfx.registry.cli import main

sys.exit(main())
