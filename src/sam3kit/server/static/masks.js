// Masks on the page: COCO RLE decoding, the foreground of a mask, colours, the overlay, and the two downloads.
//
// A decoded mask is {w, h, data: Uint8Array(h * w) row-major 0/1, fg: Int32Array of its foreground pixel
// indices, area, box: [x1, y1, x2, y2] inclusive pixel indices, or null when empty}.

// Compressed COCO counts: each count is written 5 bits per character (offset 48), low bits first; bit 5 says
// another character follows and, on the last one, bit 4 is the sign; from the third count on, the count is
// stored as its difference to the count two places before.
export function rleCounts(text) {
  const counts = [];
  let p = 0;
  while (p < text.length) {
    let value = 0, shift = 0, more = true;
    while (more) {
      const c = text.charCodeAt(p++) - 48;
      value |= (c & 0x1f) << shift;
      shift += 5;
      more = (c & 0x20) !== 0;
      if (!more && (c & 0x10) !== 0) value |= -1 << shift;
    }
    if (counts.length > 2) value += counts[counts.length - 2];
    counts.push(value);
  }
  return counts;
}

// The runs go down the columns (column-major, as pycocotools stores masks), starting with background.
export function decodeRle(rle) {
  const [h, w] = rle.size;
  const data = new Uint8Array(h * w);
  const counts = typeof rle.counts === "string" ? rleCounts(rle.counts) : rle.counts;
  let i = 0, on = false;
  for (const n of counts) {
    if (on) {
      for (let j = i; j < i + n; j++) {
        const x = (j / h) | 0;
        data[(j - x * h) * w + x] = 1;
      }
    }
    i += n;
    on = !on;
  }
  return describe(data, w, h);
}

export function describe(data, w, h) {
  let area = 0;
  for (let k = 0; k < data.length; k++) area += data[k];
  const fg = new Int32Array(area);
  let x1 = w, y1 = h, x2 = -1, y2 = -1, n = 0;
  for (let y = 0, k = 0; y < h; y++) {
    for (let x = 0; x < w; x++, k++) {
      if (!data[k]) continue;
      fg[n++] = k;
      if (x < x1) x1 = x;
      if (x > x2) x2 = x;
      if (y < y1) y1 = y;
      if (y > y2) y2 = y;
    }
  }
  return { w, h, data, fg, area, box: area ? [x1, y1, x2, y2] : null };
}

const PALETTE = [
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
  [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255], [170, 110, 40],
  [255, 250, 200], [128, 0, 0], [170, 255, 195], [128, 128, 0], [255, 215, 180], [0, 0, 128], [128, 128, 128],
];

export function colour(i) {
  return PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

export function css([r, g, b], a = 1) {
  return `rgba(${r}, ${g}, ${b}, ${a})`;
}

// Paint `layers` ([{mask, rgb, alpha}], later ones on top) into an ImageData of the masks' size.
export function paintMasks(ctx, w, h, layers) {
  const image = ctx.createImageData(w, h);
  const px = image.data;
  for (const { mask, rgb, alpha } of layers) {
    const a = Math.round(alpha * 255);
    const fg = mask.fg;
    for (let n = 0; n < fg.length; n++) {
      const o = fg[n] * 4;
      px[o] = rgb[0]; px[o + 1] = rgb[1]; px[o + 2] = rgb[2]; px[o + 3] = a;
    }
  }
  ctx.putImageData(image, 0, 0);
}

// The mask's outline (foreground pixels with a background 4-neighbour) as one path of unit squares.
export function outlinePath(mask) {
  const { w, h, data, fg } = mask;
  const path = new Path2D();
  for (let n = 0; n < fg.length; n++) {
    const k = fg[n], x = k % w, y = (k - x) / w;
    if (x === 0 || y === 0 || x === w - 1 || y === h - 1 || !data[k - 1] || !data[k + 1] || !data[k - w] || !data[k + w]) {
      path.rect(x, y, 1, 1);
    }
  }
  return path;
}

export function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// One PNG of the image's size: each instance in its colour (opaque), later instances on top, background clear.
export function masksPng(instances, w, h) {
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  paintMasks(ctx, w, h, instances.map((inst) => ({ mask: inst.mask, rgb: inst.rgb, alpha: 1 })));
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

// COCO JSON: one image, one category per label, one annotation per instance (RLE as the server sent it).
export function cocoJson(instances, w, h, fileName) {
  const categories = [];
  const ids = new Map();
  for (const inst of instances) {
    if (!ids.has(inst.label)) {
      ids.set(inst.label, categories.length + 1);
      categories.push({ id: categories.length + 1, name: inst.label });
    }
  }
  const annotations = instances.map((inst, i) => {
    const b = inst.mask.box;
    return {
      id: i + 1, image_id: 1, category_id: ids.get(inst.label), segmentation: inst.rle, area: inst.mask.area,
      bbox: b ? [b[0], b[1], b[2] - b[0] + 1, b[3] - b[1] + 1] : [0, 0, 0, 0], iscrowd: 0, score: inst.score,
    };
  });
  const doc = { images: [{ id: 1, file_name: fileName, width: w, height: h }], categories, annotations };
  return new Blob([JSON.stringify(doc, null, 1)], { type: "application/json" });
}
