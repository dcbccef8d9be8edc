"""Image sizes: each captcha style's default (``data.style``) and the checks of configured sizes."""

from __future__ import annotations

from typing import Any

CAPTCHA_STYLE_SIZES: dict[str, tuple[int, int]] = {"harness": (96, 32), "imagecaptcha": (200, 200)}
"""(width, height) a generated captcha has when ``data.image_width``/``image_height`` are unset."""
CAPTCHA_STYLES: tuple[str, ...] = tuple(CAPTCHA_STYLE_SIZES)
"""``data.style`` values (kind=captcha)."""


def style_size(style: str, width: int | None, height: int | None) -> tuple[int, int]:
    """(width, height) of a generated captcha: each side given, or the style's default."""
    default_w, default_h = CAPTCHA_STYLE_SIZES.get(style, CAPTCHA_STYLE_SIZES["harness"])
    return (default_w if width is None else width, default_h if height is None else height)


def size_errors(data: Any, model: Any) -> list[str]:
    """Problems with the generated captchas' style and size (``DataConfig``) and tiny-vlm's input
    size and stem (``ModelConfig``), one line each naming the YAML key."""
    errors = [
        f"`{key}` must be > 0, got {value}"
        for key, value in (
            ("data.image_width", data.image_width),
            ("data.image_height", data.image_height),
            ("model.input_height", model.input_height),
            ("model.input_width", model.input_width),
            ("model.stem_stages", model.stem_stages),
        )
        if value is not None and value <= 0
    ]
    if data.kind != "captcha" and (data.style != "harness" or data.test_style is not None):
        errors.append(
            f"`data.style`/`data.test_style` choose generated captchas (data.kind: captcha); "
            f"data.kind: {data.kind} reads your files: leave them unset"
        )
    side = min(model.input_height, model.input_width)
    if not errors and model.name == "tiny-vlm" and side >> model.stem_stages < 1:
        errors.append(
            f"`model.stem_stages` ({model.stem_stages}) halves the input "
            f"{model.input_height}x{model.input_width} to nothing; use at most "
            f"{side.bit_length() - 1} stages or a larger `model.input_height`/`input_width`"
        )
    return errors


def unset_sizes(config: dict[str, Any]) -> dict[str, Any]:
    """A plain cell config (``to_dict``) with the generated image size unset, so that a merge
    on top of it leaves the size to the style unless the YAML names one."""
    return {**config, "data": {**config["data"], "image_width": None, "image_height": None}}


def resolve_sizes(config: dict[str, Any]) -> dict[str, Any]:
    """A merged plain cell config with an unset generated size set to its style's, as
    ``DataConfig`` resolves it: the resolved config (and the cell's id) names the size."""
    data = config["data"]
    size = style_size(
        data.get("style", "harness"), data.get("image_width"), data.get("image_height")
    )
    return {**config, "data": {**data, "image_width": size[0], "image_height": size[1]}}
