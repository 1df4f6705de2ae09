#!/usr/bin/env python3
"""Draw the application icon with QPainter: resources/icons/hvconsole.png and hvconsole.ico.

    .venv/bin/python installer/make_icon.py

A dark blue tile with three server units, each with a green status light. Every size is drawn
on its own (not scaled down from the large one) so the small ones stay crisp. The .ico holds
PNG-compressed images (16, 24, 32, 48, 64, 256 px), which Windows reads since Vista; writing that
container takes a few lines, so no imaging library is needed. The output is committed; run this
again only when the drawing changes.
"""
from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter  # noqa: E402

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
ICO_SIZES = (16, 24, 32, 48, 64, 256)
TILE, UNIT, LIGHT = QColor("#1f4e79"), QColor("#f2f5f8"), QColor("#3ccf6e")


def draw(size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    s = float(size)
    p.setBrush(TILE)
    p.drawRoundedRect(QRectF(0, 0, s, s), s * 0.18, s * 0.18)
    margin, gap = s * 0.17, s * 0.07
    height = (s - 2 * margin - 2 * gap) / 3
    for i in range(3):
        top = margin + i * (height + gap)
        p.setBrush(UNIT)
        p.drawRoundedRect(QRectF(margin, top, s - 2 * margin, height), height * 0.2, height * 0.2)
        p.setBrush(LIGHT)
        d = height * 0.42
        p.drawEllipse(QRectF(s - margin - height * 0.3 - d, top + (height - d) / 2, d, d))
    p.end()
    return image


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data)


def ico_bytes(images: list[bytes], sizes: tuple[int, ...]) -> bytes:
    """An ICO container: header, one 16-byte entry per image, then the PNG data."""
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    entries, blobs = b"", b""
    for size, blob in zip(sizes, images, strict=True):
        side = 0 if size >= 256 else size  # 0 means 256 in an ICO entry
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(blob), offset + len(blobs))
        blobs += blob
    return header + entries + blobs


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - fonts, paint engine
    ICONS.mkdir(parents=True, exist_ok=True)
    (ICONS / "hvconsole.png").write_bytes(png_bytes(draw(256)))
    (ICONS / "hvconsole.ico").write_bytes(ico_bytes([png_bytes(draw(n)) for n in ICO_SIZES], ICO_SIZES))
    for name in ("hvconsole.png", "hvconsole.ico"):
        print(f"{ICONS / name}: {(ICONS / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
