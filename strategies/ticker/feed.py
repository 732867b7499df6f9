"""A seeded random-walk quote feed, so the example needs no market data."""

import random


class SimulatedFeed:
    def __init__(self, instruments, seed, spread=0.0002):
        self._random = random.Random(seed)
        self._mid = {name: 1.0 + self._random.random() for name in instruments}
        self._spread = spread

    def next(self):
        quotes = {}
        for name, mid in self._mid.items():
            mid *= 1 + self._random.gauss(0, 0.0002)
            self._mid[name] = mid
            quotes[name] = (mid - self._spread / 2, mid + self._spread / 2)
        return quotes
