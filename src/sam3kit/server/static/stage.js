// A stage: the picture on one canvas (at its own pixel size, scaled by CSS), masks and marks on a canvas above it
// at the screen's resolution (masks painted at the picture's size and scaled up without smoothing, so pixels stay
// sharp, and text and marks drawn crisp), and the pointer turned into clicks, drags (boxes) and hovers in
// picture pixels.

import { css, paintMasks } from "./masks.js";

const DRAG_PIXELS = 5; // a press that moves further (on screen) than this is a box, not a click

export class Stage {
  constructor(container, imageCanvas, overlayCanvas, hint, handlers) {
    this.container = container;
    this.image = imageCanvas;
    this.overlay = overlayCanvas;
    this.hint = hint;
    this.handlers = handlers; // {click(x, y, shift), box([x1, y1, x2, y2]), hover(x, y | null), redraw()}
    this.masks = document.createElement("canvas"); // the masks at the picture's size
    this.w = 0;
    this.h = 0;
    this.press = null;
    this.drag = null; // [x1, y1, x2, y2] while dragging
    overlayCanvas.addEventListener("pointerdown", (e) => this.down(e));
    overlayCanvas.addEventListener("pointermove", (e) => this.move(e));
    overlayCanvas.addEventListener("pointerup", (e) => this.up(e));
    overlayCanvas.addEventListener("pointerleave", () => { if (!this.press) handlers.hover(null); });
    new ResizeObserver(() => this.fit()).observe(container);
  }

  // Show the picture as large as the stage allows, keeping its aspect (the overlay follows the picture).
  fit() {
    if (!this.w) return;
    const r = this.container.getBoundingClientRect();
    if (!r.width || !r.height) return; // a hidden tab
    const s = Math.min((r.width - 24) / this.w, (r.height - 24) / this.h);
    const cw = Math.max(1, Math.floor(this.w * s)), ch = Math.max(1, Math.floor(this.h * s));
    this.image.style.width = `${cw}px`;
    this.image.style.height = `${ch}px`;
    const dpr = window.devicePixelRatio || 1;
    if (this.overlay.width !== Math.round(cw * dpr) || this.overlay.height !== Math.round(ch * dpr)) {
      this.overlay.width = Math.round(cw * dpr);
      this.overlay.height = Math.round(ch * dpr);
      this.handlers.redraw();
    }
  }

  show(bitmap, w, h) {
    if (this.w !== w || this.h !== h) {
      this.w = this.image.width = this.masks.width = w;
      this.h = this.image.height = this.masks.height = h;
    }
    const ctx = this.image.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    if (bitmap) ctx.drawImage(bitmap, 0, 0, w, h);
    this.hint.hidden = true;
    this.image.parentElement.hidden = false;
    this.fit();
  }

  // Picture pixel (x, y) under a pointer event, clamped inside the picture.
  at(e) {
    const r = this.overlay.getBoundingClientRect();
    const x = ((e.clientX - r.left) / r.width) * this.w;
    const y = ((e.clientY - r.top) / r.height) * this.h;
    return [Math.min(Math.max(x, 0), this.w - 1), Math.min(Math.max(y, 0), this.h - 1)];
  }

  down(e) {
    if (e.button !== 0 || !this.w) return;
    this.overlay.setPointerCapture(e.pointerId);
    this.press = { sx: e.clientX, sy: e.clientY, p: this.at(e), shift: e.shiftKey };
  }

  move(e) {
    if (!this.press) {
      if (this.w) this.handlers.hover(...this.at(e));
      return;
    }
    const moved = Math.hypot(e.clientX - this.press.sx, e.clientY - this.press.sy) > DRAG_PIXELS;
    if (moved || this.drag) {
      const [x0, y0] = this.press.p, [x1, y1] = this.at(e);
      this.drag = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
      this.handlers.redraw();
    }
  }

  up(e) {
    const press = this.press;
    this.press = null;
    if (!press) return;
    const box = this.drag;
    this.drag = null;
    if (box) {
      this.handlers.box(box.map((v) => Math.round(v)));
    } else {
      const [x, y] = press.p;
      this.handlers.click(Math.round(x), Math.round(y), press.shift || e.shiftKey);
    }
  }

  // Draw the overlay: mask `layers` ([{mask, rgb, alpha}], later on top), an `outline` (a Path2D in picture
  // pixels, filled white), clicks (green foreground, red background), boxes, the box being dragged, and labels
  // ({text, x, y, rgb} at picture pixel x, y).
  paint(layers, { outline = null, points = [], boxes = [], labels = [] } = {}) {
    if (!this.w) return;
    const ctx = this.overlay.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    paintMasks(this.masks.getContext("2d"), this.w, this.h, layers);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.masks, 0, 0, this.overlay.width, this.overlay.height);
    const k = this.overlay.width / this.w; // canvas pixels per picture pixel
    ctx.setTransform(k, 0, 0, this.overlay.height / this.h, 0, 0); // draw in picture pixels from here
    if (outline) {
      ctx.fillStyle = "white";
      ctx.fill(outline);
    }
    const unit = (window.devicePixelRatio || 1) / k; // one screen pixel, in picture pixels
    ctx.lineWidth = 2 * unit;
    for (const [x1, y1, x2, y2] of boxes) {
      ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    }
    if (this.drag) {
      const [x1, y1, x2, y2] = this.drag;
      ctx.setLineDash([6 * unit, 4 * unit]);
      ctx.strokeStyle = "white";
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.setLineDash([]);
    }
    for (const [x, y, label] of points) {
      ctx.beginPath();
      ctx.arc(x, y, 5 * unit, 0, 2 * Math.PI);
      ctx.fillStyle = label ? "rgb(60, 200, 90)" : "rgb(235, 60, 60)";
      ctx.fill();
      ctx.strokeStyle = "white";
      ctx.lineWidth = 1.5 * unit;
      ctx.stroke();
    }
    ctx.font = `${12 * unit}px system-ui, sans-serif`;
    ctx.textBaseline = "bottom";
    for (const { text, x, y, rgb } of labels) {
      const tw = ctx.measureText(text).width + 8 * unit;
      const th = 17 * unit;
      const top = Math.max(y - th, 0);
      ctx.fillStyle = css(rgb, 0.85);
      ctx.fillRect(x, top, tw, th);
      ctx.fillStyle = "black";
      ctx.fillText(text, x + 4 * unit, top + th - 3 * unit);
    }
  }

  // Files dropped on the stage go to onFile(file).
  acceptDrops(onFile) {
    const c = this.container;
    c.addEventListener("dragover", (e) => { e.preventDefault(); c.classList.add("dragging"); });
    c.addEventListener("dragleave", () => c.classList.remove("dragging"));
    c.addEventListener("drop", (e) => {
      e.preventDefault();
      c.classList.remove("dragging");
      const file = e.dataTransfer.files[0];
      if (file) onFile(file);
    });
  }
}
