import sys

from devstack import main

sys.exit(main())
