// The image tab: open an image, click / box / type a concept, refine, pick among three masks, undo, export.
//
// Instances are the kept masks: {label, score, rle, mask, rgb, kind: "text" | "click", segment: {id, object}?}.
// The current object is what clicks and a box are building: its points, box, the mask it refines (a text-found
// instance it replaces), and the three masks of its last predict with their IoU scores.

import * as api from "./api.js";
import { cocoJson, colour, decodeRle, download, masksPng, outlinePath } from "./masks.js";
import { Stage } from "./stage.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 250;

export class ImageTab {
  constructor(say) {
    this.say = say;
    this.stage = new Stage($("image-stage"), $("image-canvas"), $("image-overlay"), $("image-hint"), {
      click: (x, y, shift) => this.click(x, y, shift),
      box: (b) => this.box(b),
      hover: (x, y) => this.hoverAt(x, y),
      redraw: () => this.draw(),
    });
    this.stage.acceptDrops((f) => this.open(f));
    this.reset();
    $("image-file").addEventListener("change", (e) => { if (e.target.files[0]) this.open(e.target.files[0]); });
    $("concept-form").addEventListener("submit", (e) => { e.preventDefault(); this.concept(); });
    $("keep-object").addEventListener("click", () => this.keep());
    $("undo").addEventListener("click", () => this.undo());
    $("clear").addEventListener("click", () => this.clear());
    $("download-png").addEventListener("click", () => this.downloadPng());
    $("download-coco").addEventListener("click", () => this.downloadCoco());
    this.updateButtons();
  }

  reset() {
    this.imageId = null;
    this.fileName = "image";
    this.w = this.h = 0;
    this.instances = [];
    this.current = null;
    this.history = [];
    this.hover = -1;
    this.clickCount = 0;
    this.generation = (this.generation || 0) + 1; // answers for an earlier image are dropped
  }

  // ------------------------------------------------------------------ opening and encoding
  async open(file) {
    this.reset();
    const generation = this.generation;
    this.fileName = file.name || "image";
    this.status("uploading", "Uploading…");
    $("instances").replaceChildren();
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch (e) {
      this.status("failed", "This file is not an image the browser can show");
      return;
    }
    try {
      const st = await api.upload("/v1/images", file);
      if (generation !== this.generation) return;
      this.imageId = st.image_id;
      this.w = st.width;
      this.h = st.height;
      this.stage.show(bitmap, st.width, st.height);
      this.draw();
      await this.poll(st, generation);
    } catch (e) {
      this.status("failed", e.message);
      this.say(e.message);
    }
  }

  async poll(st, generation) {
    const bar = $("image-progress");
    bar.hidden = false;
    while (st.status === "encoding") {
      bar.value = st.progress;
      this.status("encoding", `Encoding… ${Math.round(st.progress * 100)} %`);
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (generation !== this.generation) return;
      st = await api.get(`/v1/images/${st.image_id}`);
    }
    bar.hidden = true;
    if (st.status === "ready") this.status("ready", `Ready · ${st.width}×${st.height}`);
    else this.status("failed", `Encoding failed: ${st.error}`);
    this.updateButtons();
  }

  status(state, text) {
    const el = $("image-status");
    el.dataset.state = state;
    el.textContent = text;
  }

  // ------------------------------------------------------------------ actions (each one can be undone)
  save() {
    const c = this.current;
    this.history.push({
      instances: this.instances.slice(),
      current: c && { ...c, points: c.points.slice() },
    });
  }

  undo() {
    const last = this.history.pop();
    if (!last) return;
    this.instances = last.instances;
    this.current = last.current;
    this.refresh();
  }

  clear() {
    if (!this.instances.length && !this.current) return;
    this.save();
    this.instances = [];
    this.current = null;
    this.refresh();
  }

  async click(x, y, shift) {
    if (!this.imageId) return;
    this.save();
    if (!this.current) {
      const under = this.instanceAt(x, y);
      this.current = { points: [], box: null, replaces: -1, maskInput: null, masks: null, rles: null, ious: null,
                       choice: 0 };
      if (under >= 0 && this.instances[under].segment) { // refine a text-found instance with clicks
        const seg = this.instances[under].segment;
        this.current.replaces = under;
        this.current.maskInput = { object: seg.object, segment_id: seg.id };
      }
    }
    this.current.points.push([x, y, shift ? 0 : 1]);
    await this.predict();
  }

  async box(b) {
    if (!this.imageId) return;
    this.save();
    if (!this.current) {
      this.current = { points: [], box: null, replaces: -1, maskInput: null, masks: null, rles: null, ious: null,
                       choice: 0 };
    }
    this.current.box = b;
    await this.predict();
  }

  async predict() {
    const c = this.current, generation = this.generation;
    const body = { multimask: true };
    if (c.points.length) {
      body.points = c.points.map(([x, y]) => [x, y]);
      body.point_labels = c.points.map((p) => p[2]);
    }
    if (c.box) body.box = c.box;
    if (c.maskInput) body.mask_input = c.maskInput;
    this.draw();
    try {
      const r = await api.post(`/v1/images/${this.imageId}/predict`, body);
      if (generation !== this.generation || c !== this.current) return;
      c.rles = r.masks;
      c.masks = r.masks.map(decodeRle);
      c.ious = r.iou_scores;
      c.choice = r.best;
    } catch (e) {
      this.say(e.message);
      this.undo();
      return;
    }
    this.refresh();
  }

  choose(k) {
    if (!this.current || !this.current.masks) return;
    this.save();
    this.current.choice = k;
    this.refresh();
  }

  keep() {
    const c = this.current;
    if (!c || !c.masks) return;
    this.save();
    const inst = {
      label: c.replaces >= 0 ? this.instances[c.replaces].label : `object ${++this.clickCount}`,
      score: c.ious[c.choice], rle: c.rles[c.choice], mask: c.masks[c.choice], kind: "click",
    };
    if (c.replaces >= 0) {
      inst.rgb = this.instances[c.replaces].rgb;
      this.instances = this.instances.slice();
      this.instances[c.replaces] = inst;
    } else {
      inst.rgb = colour(this.instances.length);
      this.instances = [...this.instances, inst];
    }
    this.current = null;
    this.refresh();
  }

  async concept() {
    const text = $("concept-text").value.trim();
    if (!text || !this.imageId) return;
    const threshold = Number($("concept-threshold").value);
    const generation = this.generation;
    $("concept-go").disabled = true;
    try {
      const r = await api.post(`/v1/images/${this.imageId}/segment`, { text, threshold });
      if (generation !== this.generation) return;
      this.save();
      const found = r.objects.map((o, k) => ({
        label: text, score: o.score, rle: o.mask, mask: decodeRle(o.mask), kind: "text",
        segment: { id: r.segment_id, object: k }, rgb: colour(this.instances.length + k),
      }));
      this.instances = [...this.instances, ...found];
      this.say(found.length ? "" : `No “${text}” found above ${threshold} (presence ${r.presence.toFixed(2)})`, "info");
      this.refresh();
    } catch (e) {
      this.say(e.message);
    } finally {
      $("concept-go").disabled = false;
    }
  }

  remove(i) {
    this.save();
    this.instances = this.instances.filter((_, k) => k !== i);
    const c = this.current;
    if (c && c.replaces === i) this.current = { ...c, points: c.points.slice(), replaces: -1 };
    else if (c && c.replaces > i) this.current = { ...c, points: c.points.slice(), replaces: c.replaces - 1 };
    this.hover = -1;
    this.refresh();
  }

  // ------------------------------------------------------------------ hover
  instanceAt(x, y) {
    const k = Math.round(y) * this.w + Math.round(x);
    for (let i = this.instances.length - 1; i >= 0; i--) if (this.instances[i].mask.data[k]) return i;
    return -1;
  }

  hoverAt(x, y) {
    this.setHover(x === null ? -1 : this.instanceAt(x, y));
  }

  setHover(i) {
    if (i === this.hover) return;
    this.hover = i;
    for (const li of $("instances").children) li.classList.toggle("hover", Number(li.dataset.index) === i);
    this.draw();
  }

  // ------------------------------------------------------------------ drawing
  refresh() {
    this.renderList();
    this.renderChoices();
    this.updateButtons();
    this.draw();
  }

  draw() {
    if (!this.w) return;
    const layers = this.instances.map((inst, i) => ({
      mask: inst.mask, rgb: inst.rgb,
      alpha: i === this.hover ? 0.75 : (this.current && this.current.replaces === i ? 0.15 : 0.45),
    }));
    const c = this.current;
    if (c && c.masks) layers.push({ mask: c.masks[c.choice], rgb: [76, 154, 255], alpha: 0.55 });
    const labels = this.instances.filter((inst) => inst.mask.box).map((inst) => ({
      text: `${inst.label} ${inst.score.toFixed(2)}`, x: inst.mask.box[0], y: inst.mask.box[1], rgb: inst.rgb,
    }));
    this.stage.paint(layers, {
      outline: this.hover >= 0 ? outlinePath(this.instances[this.hover].mask) : null,
      points: c ? c.points : [], boxes: c && c.box ? [c.box] : [], labels,
    });
  }

  renderList() {
    const ol = $("instances");
    ol.replaceChildren(...this.instances.map((inst, i) => {
      const li = document.createElement("li");
      li.dataset.index = i;
      li.innerHTML = `<span class="swatch"></span><span class="name"></span><span class="score"></span>` +
                     `<button title="remove">×</button>`;
      li.querySelector(".swatch").style.background = `rgb(${inst.rgb.join(",")})`;
      li.querySelector(".name").textContent = inst.label;
      li.querySelector(".score").textContent = inst.score.toFixed(2);
      li.querySelector("button").addEventListener("click", () => this.remove(i));
      li.addEventListener("mouseenter", () => this.setHover(i));
      li.addEventListener("mouseleave", () => this.setHover(-1));
      if (i === this.hover) li.classList.add("hover");
      return li;
    }));
  }

  renderChoices() {
    const c = this.current;
    $("current-group").hidden = !c;
    const box = $("mask-choices");
    if (!c || !c.masks) {
      box.replaceChildren();
      return;
    }
    box.replaceChildren(...c.masks.map((m, k) => {
      const b = document.createElement("button");
      b.textContent = `${k + 1} · ${c.ious[k].toFixed(2)}`;
      b.title = `mask ${k + 1}: predicted IoU ${c.ious[k].toFixed(3)}, ${m.area} pixels`;
      b.classList.toggle("chosen", k === c.choice);
      b.addEventListener("click", () => this.choose(k));
      return b;
    }));
  }

  updateButtons() {
    $("undo").disabled = !this.history.length;
    $("clear").disabled = !this.instances.length && !this.current;
    $("download-png").disabled = $("download-coco").disabled = !this.instances.length;
    $("keep-object").disabled = !(this.current && this.current.masks);
  }

  // ------------------------------------------------------------------ export
  stem() {
    return this.fileName.replace(/\.[^.]*$/, "") || "image";
  }

  async downloadPng() {
    if (this.instances.length) download(`${this.stem()}_masks.png`, await masksPng(this.instances, this.w, this.h));
  }

  downloadCoco() {
    if (this.instances.length) download(`${this.stem()}_coco.json`, cocoJson(this.instances, this.w, this.h, this.fileName));
  }

  key(e) {
    if (e.target.tagName === "INPUT") return;
    if (e.key === "Enter") this.keep();
    else if (e.key === "z" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.undo(); }
    else if (e.key === "Escape" && this.current) { this.save(); this.current = null; this.refresh(); }
    else if (["1", "2", "3"].includes(e.key)) this.choose(Number(e.key) - 1);
  }
}
