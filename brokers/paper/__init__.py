"""The built-in paper broker (``type = "paper"``): a simulated account, quotes from a seeded random walk or a CSV replay.

:mod:`.options` (what it can be told), :mod:`.feed` (quotes), :mod:`.execution`
(fill maths), :mod:`.ledger` (positions and cash) are pure; :mod:`.tables`
holds its tables in the state database and :mod:`.adapter` ties them together.
"""

from .adapter import PaperBroker
from .options import PaperOptions

__all__ = ["PaperBroker", "PaperOptions"]
