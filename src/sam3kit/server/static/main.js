// The page: two tabs (image, video), the token form, the message line, and the model line in the header.

import * as api from "./api.js";
import { ImageTab } from "./image.js";
import { VideoTab } from "./video.js";

const $ = (id) => document.getElementById(id);

function say(text, kind = "error") {
  const el = $("message");
  el.textContent = text || "";
  el.className = kind === "info" ? "info" : "";
  el.hidden = !text;
}

function selectTab(name) {
  for (const b of document.querySelectorAll(".tab")) {
    const on = b.dataset.tab === name;
    b.classList.toggle("active", on);
    b.setAttribute("aria-selected", String(on));
  }
  $("panel-image").hidden = name !== "image";
  $("panel-video").hidden = name !== "video";
  current = name;
}

let current = "image";

async function showInfo() {
  try {
    const info = await api.get("/v1/info");
    const m = info.model;
    $("model-info").textContent = `${m.source || "model"} · ${m.device} · ${m.dtype} · ${m.image_size} px`;
    $("token-form").hidden = true;
    if (!info.features.video_files) $("tab-video").title = "this server cannot read video files";
  } catch (e) {
    if (e.status !== 401) say(e.message);
  }
}

api.initToken();
const image = new ImageTab(say);
const video = new VideoTab(say);
api.onUnauthorized((message) => {
  $("token-form").hidden = false;
  say(`${message}: enter the server's token at the top right`);
});
$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  api.setToken($("token-input").value.trim());
  say("");
  showInfo();
});
for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => selectTab(b.dataset.tab));
document.addEventListener("keydown", (e) => (current === "image" ? image.key(e) : video.key(e)));
// A video dropped anywhere on the image tab opens in the video tab (and an image on the video tab in the image tab).
for (const [stage, kind, other] of [["image-stage", "video/", () => video], ["video-stage", "image/", () => image]]) {
  $(stage).addEventListener("drop", (e) => {
    const f = e.dataTransfer.files[0];
    if (f && f.type.startsWith(kind)) {
      e.stopImmediatePropagation();
      e.preventDefault();
      $(stage).classList.remove("dragging");
      selectTab(kind === "video/" ? "video" : "image");
      other().open(f);
    }
  }, true);
}
showInfo();
window.sam3kitPage = { image, video }; // for the browser test and the console
