"""C{python -m twisted_chat.client}."""

import sys

from twisted_chat.client.app import main

sys.exit(main())
