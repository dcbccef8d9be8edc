"""Captchas drawn by the PyPI `captcha` package (``ImageCaptcha``): the seed's kind of images.

The seed's captcha-images set (200x200, 6 digits) is of the kind this package draws: warped,
rotated glyphs in DroidSansMono, random spacing, noise dots, a curve and a smoothing filter.
``captcha`` 0.7.1 draws its randomness from the ``secrets`` module (not seedable), so
``draw_imagecaptcha`` gives it, for the duration of one image, an object with the same three
functions backed by a ``random.Random`` seeded from (seed, split, index): the same arguments give
the same image, byte for byte, in every process.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from PIL import Image

DEFAULT_SIZE = (200, 200)
"""(width, height) of the seed's captcha-images set."""

_LOCK = threading.Lock()  # the package's module-level `secrets` is swapped while one image draws


class SeededSecrets:
    """The part of the ``secrets`` module that ``captcha.image`` calls, from a seeded Random."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def randbelow(self, n: int) -> int:
        return self._rng.randrange(n)

    def randbits(self, k: int) -> int:
        return self._rng.getrandbits(k)

    def choice(self, seq: Sequence[object]) -> object:
        return self._rng.choice(seq)


@functools.lru_cache(maxsize=16)
def _generator(width: int, height: int):  # -> captcha.image.ImageCaptcha (imported lazily)
    from captcha.image import ImageCaptcha

    return ImageCaptcha(width=width, height=height)


@contextmanager
def _seeded(rng: random.Random) -> Iterator[None]:
    import captcha.image as module

    with _LOCK:
        saved = module.secrets
        module.secrets = SeededSecrets(rng)  # type: ignore[assignment]
        try:
            yield
        finally:
            module.secrets = saved


def draw_imagecaptcha(
    seed: int, split: str, index: int, digits: int, width: int, height: int
) -> tuple[str, Image.Image]:
    """Image ``index`` of a split: its ``digits``-digit answer and the grayscale picture."""
    rng = random.Random(f"imagecaptcha/{seed}/{split}/{index}")  # str seeds hash via SHA-512
    answer = "".join(str(rng.randrange(10)) for _ in range(digits))
    with _seeded(rng):
        image = _generator(width, height).generate_image(answer)
    return answer, image.convert("L")
