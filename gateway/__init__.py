"""dmv-gateway: a purpose-bound access gateway in front of PostgreSQL.

The path of a request reads from the package names:
front door (``frontdoor``) -> identity (``identity``) -> analyzer (``analyzer``)
-> policy (``policy``) -> rewrite (``rewrite``) -> backend (``backend``) -> audit (``audit``).
"""

__version__ = "0.1.0"

from gateway import _pure

_pure.install()  # GATEWAY_PURE_PYTHON=1: the hot path's pure-Python sources, not its compiled build
