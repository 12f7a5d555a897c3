import sys

from crossbar_sim.cli import main

sys.exit(main())
