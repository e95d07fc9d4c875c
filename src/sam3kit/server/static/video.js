// The video tab: open a video (a session on the server), prompt objects on frames by clicks, a box or a concept,
// track them (GET .../propagate, an NDJSON stream), and play the frames with their masks.
//
// Results are kept per frame as the server sends them ({frame_index, objects: [{id, score, box, mask}]}) and
// decoded when a frame is drawn; frame pictures come from GET /v1/videos/{id}/frames/{i} and are kept for a while.

import * as api from "./api.js";
import { colour, decodeRle } from "./masks.js";
import { Stage } from "./stage.js";

const $ = (id) => document.getElementById(id);
const KEEP_FRAMES = 240; // frame pictures kept in memory

export class VideoTab {
  constructor(say) {
    this.say = say;
    this.stage = new Stage($("video-stage"), $("video-canvas"), $("video-overlay"), $("video-hint"), {
      click: (x, y, shift) => this.prompt({ points: [[x, y]], point_labels: [shift ? 0 : 1] }, [x, y, shift ? 0 : 1]),
      box: (b) => this.prompt({ box: b }),
      hover: () => {},
      redraw: () => this.drawOverlay(),
    });
    this.stage.acceptDrops((f) => this.open(f));
    this.session = null;
    this.results = new Map();
    this.frames = new Map();
    this.marks = new Map(); // frame -> clicks shown on it
    this.frame = 0;
    this.objId = null;
    this.playing = false;
    this.tracking = null;
    $("video-file").addEventListener("change", (e) => { if (e.target.files[0]) this.open(e.target.files[0]); });
    $("frame-slider").addEventListener("input", (e) => this.show(Number(e.target.value)));
    $("video-play").addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    $("new-object").addEventListener("click", () => { this.objId = null; this.renderObjects(); });
    $("track").addEventListener("click", () => (this.tracking ? this.tracking.abort() : this.track()));
    $("video-reset").addEventListener("click", () => this.resetSession());
    $("video-concept-form").addEventListener("submit", (e) => { e.preventDefault(); this.concept(); });
    this.updateButtons();
  }

  async open(file) {
    this.pause();
    if (this.tracking) this.tracking.abort();
    if (this.session) api.del(`/v1/videos/${this.session.session_id}`).catch(() => {});
    this.session = null;
    this.results.clear();
    this.frames.clear();
    this.marks.clear();
    this.objId = null;
    this.status("uploading", "Uploading…");
    try {
      this.session = await api.upload("/v1/videos", file);
    } catch (e) {
      this.status("failed", e.message);
      this.say(e.message);
      return;
    }
    const s = this.session;
    const slider = $("frame-slider");
    slider.max = Math.max((s.num_frames || 1) - 1, 0);
    slider.value = 0;
    this.renderObjects();
    this.updateButtons();
    await this.show(0);
    this.status("ready", `${s.width}×${s.height} · ${s.num_frames ?? "?"} frames${s.fps ? ` · ${s.fps.toFixed(1)} fps` : ""}`);
  }

  status(state, text) {
    const el = $("video-status");
    el.dataset.state = state;
    el.textContent = text;
  }

  // ------------------------------------------------------------------ frames
  async picture(i) {
    let p = this.frames.get(i);
    if (!p) {
      p = api.blob(`/v1/videos/${this.session.session_id}/frames/${i}`).then((b) => createImageBitmap(b));
      this.frames.set(i, p);
      if (this.frames.size > KEEP_FRAMES) this.frames.delete(this.frames.keys().next().value);
      p.catch(() => this.frames.delete(i));
    }
    return p;
  }

  async show(i) {
    if (!this.session) return;
    this.frame = i;
    $("frame-slider").value = i;
    $("frame-label").textContent = `frame ${i}`;
    const s = this.session;
    let bitmap;
    try {
      bitmap = await this.picture(i);
    } catch (e) {
      this.say(e.message);
      return;
    }
    if (this.frame !== i) return; // another frame was asked for meanwhile
    this.stage.show(bitmap, s.width, s.height);
    this.drawOverlay();
  }

  drawOverlay() {
    if (!this.session) return;
    const r = this.results.get(this.frame);
    const masks = (r ? r.objects : []).map((o) => ({ o, mask: decodeRle(o.mask) }));
    const labels = masks.filter(({ mask }) => mask.box).map(({ o, mask }) => ({
      text: `${o.id}${o.concept >= 0 ? " c" + o.concept : ""} ${o.score.toFixed(2)}`, x: mask.box[0],
      y: mask.box[1], rgb: colour(o.id - 1),
    }));
    this.stage.paint(masks.map(({ o, mask }) => ({ mask, rgb: colour(o.id - 1), alpha: o.id === this.objId ? 0.6 : 0.45 })),
                     { points: this.marks.get(this.frame) || [], labels });
  }

  // ------------------------------------------------------------------ prompts
  async prompt(body, mark) {
    if (!this.session || this.tracking) return;
    const req = { frame: this.frame, ...body };
    if (this.objId !== null) req.obj_id = this.objId;
    try {
      const r = await api.post(`/v1/videos/${this.session.session_id}/prompts`, req);
      this.objId = r.obj_id;
      if (mark) this.marks.set(this.frame, [...(this.marks.get(this.frame) || []), mark]);
      this.results.set(r.frame_index, r);
      this.renderObjects();
      this.drawOverlay();
    } catch (e) {
      this.say(e.message);
    }
  }

  async concept() {
    const text = $("video-concept-text").value.trim();
    if (!text || !this.session || this.tracking) return;
    try {
      const r = await api.post(`/v1/videos/${this.session.session_id}/concepts`, { frame: this.frame, text });
      this.results.set(r.frame_index, r);
      const found = r.objects.filter((o) => o.concept === r.concept).length;
      this.say(`${found} “${text}” found on frame ${r.frame_index}`, "info");
      this.renderObjects();
      this.drawOverlay();
    } catch (e) {
      this.say(e.message);
    }
  }

  async resetSession() {
    if (!this.session || this.tracking) return;
    try {
      this.session = { ...this.session, ...(await api.post(`/v1/videos/${this.session.session_id}/reset`, {})) };
    } catch (e) {
      this.say(e.message);
      return;
    }
    this.results.clear();
    this.marks.clear();
    this.objId = null;
    this.renderObjects();
    this.drawOverlay();
  }

  // ------------------------------------------------------------------ tracking and playing
  async track() {
    if (!this.session) return;
    const s = this.session, controller = new AbortController();
    this.tracking = controller;
    this.updateButtons();
    const bar = $("track-progress");
    bar.hidden = false;
    bar.value = 0;
    let count = 0;
    const direction = $("track-direction").value;
    try {
      await api.stream(`/v1/videos/${s.session_id}/propagate?direction=${direction}`, (line) => {
        if (line.error) throw new api.ApiError(0, line.error, line.message);
        this.results.set(line.frame_index, line);
        count += 1;
        bar.value = s.num_frames ? count / s.num_frames : 0;
        $("video-status").textContent = `tracked ${count}${s.num_frames ? " / " + s.num_frames : ""} frames`;
        if (line.frame_index === this.frame) this.drawOverlay();
      }, controller.signal);
      $("video-status").textContent = `tracked ${count} frames`;
    } catch (e) {
      if (e.name === "AbortError") $("video-status").textContent = `stopped after ${count} frames`;
      else this.say(e.message);
    } finally {
      this.tracking = null;
      bar.hidden = true;
      this.updateButtons();
      this.renderObjects();
    }
  }

  async play() {
    if (!this.session || !this.session.num_frames) return;
    this.playing = true;
    $("video-play").textContent = "Pause";
    const n = this.session.num_frames, dt = 1000 / (this.session.fps || 10);
    let i = this.frame >= n - 1 ? 0 : this.frame;
    while (this.playing && i < n) {
      const started = performance.now();
      this.picture(i + 1 < n ? i + 1 : i); // fetch the next picture while this one shows
      await this.show(i);
      await new Promise((r) => setTimeout(r, Math.max(0, dt - (performance.now() - started))));
      i += 1;
    }
    this.pause();
  }

  pause() {
    this.playing = false;
    $("video-play").textContent = "Play";
  }

  renderObjects() {
    const ids = new Map();
    for (const r of this.results.values()) for (const o of r.objects) if (!ids.has(o.id)) ids.set(o.id, o.concept);
    const ol = $("video-objects");
    ol.replaceChildren(...[...ids.keys()].sort((a, b) => a - b).map((id) => {
      const li = document.createElement("li");
      li.innerHTML = `<span class="swatch"></span><span class="name"></span>`;
      li.querySelector(".swatch").style.background = `rgb(${colour(id - 1).join(",")})`;
      const c = ids.get(id);
      li.querySelector(".name").textContent = `object ${id}${c >= 0 ? ` (concept ${c})` : ""}${id === this.objId ? " ← clicks" : ""}`;
      li.addEventListener("click", () => { this.objId = id; this.renderObjects(); this.drawOverlay(); });
      return li;
    }));
    $("object-label").textContent = this.objId === null ? "next click: new object" : `clicks go to object ${this.objId}`;
  }

  updateButtons() {
    const none = !this.session;
    $("track").textContent = this.tracking ? "Stop" : "Track";
    $("track").disabled = none;
    $("video-play").disabled = none;
    $("new-object").disabled = none || !!this.tracking;
    $("video-reset").disabled = none || !!this.tracking;
  }

  key(e) {
    if (e.target.tagName === "INPUT" || !this.session) return;
    if (e.key === " ") { e.preventDefault(); this.playing ? this.pause() : this.play(); }
    else if (e.key === "ArrowRight") this.show(Math.min(this.frame + 1, Number($("frame-slider").max)));
    else if (e.key === "ArrowLeft") this.show(Math.max(this.frame - 1, 0));
  }
}
