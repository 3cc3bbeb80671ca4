"""``python -m rt_enhance.model``: print the named sizes with their analytic figures."""

from __future__ import annotations

import logging
import sys

from rt_enhance.model.sizes import size_table

logger = logging.getLogger(__name__)


def main() -> int:
    print("\n".join(size_table()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
