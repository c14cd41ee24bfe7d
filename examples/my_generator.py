"""A generator of your own: ts-eval run genai-bench --model python --model-arg entry=examples/my_generator.py:generate"""

import random

from PIL import Image, ImageDraw


def generate(prompts: list[str], seeds: list[int]) -> list[Image.Image]:
    """One image per prompt, each a function of its own (prompt, seed) only. Put your model here."""
    images = []
    for prompt, seed in zip(prompts, seeds):
        rng = random.Random(seed)
        image = Image.new("RGB", (256, 256), tuple(rng.randrange(256) for _ in range(3)))
        ImageDraw.Draw(image).text((8, 8), prompt[:40], fill=(255, 255, 255))
        images.append(image)
    return images
