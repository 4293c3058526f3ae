import sys

from lenet5.cli import main

sys.exit(main())
