// Drawing pad: pointer events (mouse, touch, pen); predictions debounced while drawing.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const digitOut = document.getElementById("digit");
const statusOut = document.getElementById("status");
const bars = document.getElementById("bars");
const seen = document.getElementById("seen").getContext("2d");
const teach = document.getElementById("teach");
const teachStatus = document.getElementById("teach-status");
const DEBOUNCE_MS = 150;
let drawing = false;
let last = null;
let timer = null;
let inked = false;
// What a correction applies to: { picture: the Blob the model read, or pixels: a piece of a
// number (28x28, 0-255), digit: its answer, refused, position: the piece's place (from 1) }
let answered = null;
let placed = { scale: 1, dx: 0, dy: 0 };  // where the image read lies on the pad
let mode = "digit";  // or "number": the wide pad, read with ?multi=true (number.js)

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  inked = false;
  digitOut.textContent = "?";
  setStatus("Draw something.");
  renderBars(null);
  seen.clearRect(0, 0, 28, 28);
  renderInside(null);
  latest++;  // an answer still on its way is for the old drawing
  answered = null;
  showTeach();
  if (typeof clearNumber === "function") clearNumber();
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return { x: (event.clientX - box.left) * (pad.width / box.width),
           y: (event.clientY - box.top) * (pad.height / box.height) };
}

function stroke(from, to) {
  ctx.strokeStyle = "#111";
  ctx.lineWidth = 18;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
  inked = true;
  placed = { scale: 1, dx: 0, dy: 0 };  // the pad itself is sent
}

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  last = point(event);
  pad.setPointerCapture(event.pointerId);
  stroke(last, last);
  schedule();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const next = point(event);
  stroke(last, next);
  last = next;
  schedule();
});
for (const name of ["pointerup", "pointercancel"]) {
  pad.addEventListener(name, () => { drawing = false; schedule(); });
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => { if (inked) pad.toBlob((blob) => send(blob, "image/png", blob)); },
                     DEBOUNCE_MS);
}

let latest = 0;
async function send(body, type, picture) {
  const ticket = ++latest;
  try {
    // For a FormData body fetch sets the multipart Content-Type (with its boundary) itself.
    const headers = type ? { "Content-Type": type } : {};
    const explain = document.getElementById("explain").checked;
    const url = mode === "number" ? "/api/predict?multi=true"
      : explain ? "/api/predict?explain=true" : "/api/predict";
    const response = await fetch(url, { method: "POST", body, headers });
    const answer = await response.json();
    if (ticket !== latest) return;  // a newer drawing has been sent since
    if (!response.ok) {
      digitOut.textContent = "?";
      setStatus(answer.detail || `error ${response.status}`, true);
      renderBars(null);
      if (mode === "number") clearNumber();
      return;
    }
    if (mode === "number") {
      showNumber(answer);
      window.lenet5Answer = answer;
      return;
    }
    // No digit likely enough: "not a digit", the closest guess kept small beside it.
    const refused = answer.digit === null;
    const shown = refused ? answer.closest : answer.digit;
    digitOut.textContent = refused ? "not a digit" : String(answer.digit);
    digitOut.classList.toggle("refused", refused);
    answered = { picture, digit: shown, refused };
    showTeach();
    const sure = `${(answer.probabilities[shown] * 100).toFixed(1)}%`;
    setStatus(refused ? `closest: ${shown}, ${sure}` : `${sure} sure`);
    renderBars(answer.probabilities, shown);
    renderSeen(answer.preprocessed);
    renderInside(answer.explain);
    window.lenet5Answer = answer;  // for the curious, in the console (and the browser test)
  } catch (error) {
    setStatus(`cannot reach the server (${error})`, true);
  }
}

function setStatus(text, isError = false) {
  statusOut.textContent = text;
  statusOut.classList.toggle("error", isError);
}

function renderBars(probabilities, top) {
  bars.replaceChildren();
  for (let d = 0; d < 10; d++) {
    const p = probabilities ? probabilities[d] : 0;
    const item = document.createElement("li");
    if (d === top) item.classList.add("top");
    item.innerHTML = `<span>${d}</span><span class="bar"><span class="fill"></span></span>` +
                     `<span>${(p * 100).toFixed(1)}%</span>`;
    item.querySelector(".fill").style.width = `${(p * 100).toFixed(1)}%`;
    bars.appendChild(item);
  }
}

function renderSeen(pixels) {
  const image = seen.createImageData(28, 28);
  pixels.flat().forEach((v, i) => {
    image.data.set([v, v, v, 255], i * 4);
  });
  seen.putImageData(image, 0, 0);
}

// Each map in gray levels scaled to its layer's largest value (ReLU outputs are >= 0); the
// saliency from blue (lowered the score) through white to red (raised it).
const layersOut = document.getElementById("layers");
function renderInside(inside) {
  layersOut.replaceChildren();
  if (!inside) return;
  const saliencyRow = row("saliency of the answer (28\u00d728)");
  const s = inside.saliency;
  const bound = Math.max(...s.flat().map(Math.abs)) || 1;
  paint(saliencyRow, "saliency", 0, s, signed(bound)).classList.add("saliency");
  // conv1's kernels above the maps they make (blue negative, red positive weights).
  const kernelBound = Math.max(...inside.kernels.flat(2).map(Math.abs)) || 1;
  const kernelRow = row("conv1 kernels: 6 of 5\u00d75, each makes the map below it");
  inside.kernels.forEach((kernel, k) => {
    paint(kernelRow, "kernels", k, kernel, signed(kernelBound)).classList.add("kernel");
  });
  for (const [name, maps] of Object.entries(inside.layers)) {
    const size = maps[0].length;
    const top = Math.max(...maps.flat(2)) || 1;
    const layerRow = row(`${name}: ${maps.length} maps ${size}\u00d7${size}`);
    maps.forEach((map, k) => paint(layerRow, name, k, map, (v) => {
      const g = 255 * v / top;
      return [g, g, g];
    }));
  }
}

// Blue-white-red: negative values blue, positive red, full colour at +-bound.
function signed(bound) {
  return (v) => {
    const t = v / bound;
    return t >= 0 ? [255, 255 * (1 - t), 255 * (1 - t)] : [255 * (1 + t), 255 * (1 + t), 255];
  };
}

function row(title) {
  const div = document.createElement("div");
  div.className = "layer";
  div.innerHTML = `<span class="name"></span>`;
  div.querySelector(".name").textContent = title;
  layersOut.appendChild(div);
  return div;
}

function paint(parent, layer, index, values, colour) {
  const canvas = document.createElement("canvas");
  canvas.width = values[0].length;
  canvas.height = values.length;
  canvas.dataset.layer = layer;
  canvas.dataset.index = String(index);
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  values.flat().forEach((v, i) => image.data.set([...colour(v).map(Math.round), 255], i * 4));
  context.putImageData(image, 0, 0);
  parent.appendChild(canvas);
  return canvas;
}

document.getElementById("clear").addEventListener("click", clearPad);
const fileInput = document.getElementById("file");
fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  if (file) upload(file);
  fileInput.value = "";
});
const drop = document.getElementById("drop");
for (const target of [drop, pad]) {
  target.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("dragging"); });
  target.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  target.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    const file = event.dataTransfer.files[0];
    if (file) upload(file);
  });
}

function upload(file) {
  const form = new FormData();
  form.append("file", file);
  setStatus(`reading ${file.name}...`);
  send(form, null, file);
  showOnPad(file);
}

function showOnPad(file) {
  // Show the uploaded picture on the pad, fitted and centred (browsers that cannot decode it
  // still get the server's answer).
  const picture = new Image();
  picture.onload = () => {
    const scale = Math.min(pad.width / picture.width, pad.height / picture.height);
    const w = picture.width * scale, h = picture.height * scale;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.drawImage(picture, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    placed = { scale, dx: (pad.width - w) / 2, dy: (pad.height - h) / 2 };
    if (reading) drawBoxes(answered ? answered.position - 1 : -1);
    URL.revokeObjectURL(picture.src);
  };
  picture.src = URL.createObjectURL(file);
}

clearPad();
function showModelName() {
  fetch("/api/model")
    .then((response) => response.json())
    .then((info) => { document.getElementById("model-name").textContent = info.name; })
    .catch(() => {});
}
showModelName();

// Corrections: confirm the answer or pick the right digit (buttons or keys 0-9); the server
// keeps them (POST /api/feedback) to learn from.
const digitButtons = document.getElementById("digits");
for (let d = 0; d < 10; d++) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = String(d);
  button.dataset.digit = String(d);
  button.addEventListener("click", () => correct(d));
  digitButtons.appendChild(button);
}
// A drawing that is no digit at all (a letter, a scribble) is taught as such too.
const notADigit = document.createElement("button");
notADigit.type = "button";
notADigit.textContent = "not a digit";
notADigit.dataset.digit = "not-a-digit";
notADigit.addEventListener("click", () => correct("not-a-digit"));
digitButtons.appendChild(notADigit);
document.getElementById("confirm").addEventListener("click", () => {
  if (answered && !answered.refused) correct(answered.digit);
});
document.addEventListener("keydown", (event) => {
  if (/^[0-9]$/.test(event.key) && !event.ctrlKey && !event.metaKey && !event.altKey) {
    correct(Number(event.key));
  }
});

function showTeach() {
  for (const button of teach.querySelectorAll("#confirm, #digits button")) {
    button.disabled = !answered;
  }
  document.getElementById("confirm").disabled = !answered || answered.refused;
  document.getElementById("confirm").textContent =
    answered && !answered.refused ? `Yes, it is a ${answered.digit}` : "Yes";
  document.getElementById("which").textContent =
    answered && answered.position ? `Digit ${answered.position} of the number: ` : "";
  if (answered) teachStatus.textContent = "";
}

async function correct(label) {
  if (!answered) return;
  let body, headers = {};
  if (answered.pixels) {  // a piece of a number: kept as the piece the model read
    const pixels = answered.pixels.map((row) => row.map((v) => v / 255));
    body = JSON.stringify({ pixels, label: String(label) });
    headers = { "Content-Type": "application/json" };
  } else {
    body = new FormData();
    body.append("file", answered.picture, "drawing.png");
    body.append("label", String(label));
  }
  try {
    const response = await fetch("/api/feedback", { method: "POST", body, headers });
    const answer = await response.json();
    if (!response.ok) {
      teachStatus.textContent = answer.detail || `error ${response.status}`;
      teachStatus.classList.add("error");
      return;
    }
    teachStatus.classList.remove("error");
    const read = answered.refused ? "not-a-digit" : answered.digit;
    const named = (value) => value === "not-a-digit" ? "not a digit" : `a ${value}`;
    const which = answered.position ? `Digit ${answered.position}: ` : "";
    teachStatus.textContent = which + (label === read
      ? `Kept: ${named(label)}, read right (correction #${answer.id}).`
      : `Kept: ${named(label)}, read as ${named(read).replace(/^a /, "")} ` +
        `(correction #${answer.id}).`);
    refreshCounts();
  } catch (error) {
    teachStatus.textContent = `cannot reach the server (${error})`;
    teachStatus.classList.add("error");
  }
}

async function refreshCounts() {
  const response = await fetch("/api/feedback");
  if (!response.ok) return;  // this server keeps no corrections
  const counts = await response.json();
  teach.hidden = false;
  document.getElementById("store-file").textContent = counts.file;
  document.getElementById("counts").textContent =
    `${counts.total} correction${counts.total === 1 ? "" : "s"}: ` +
    Object.entries(counts.per_label).map(([d, n]) => `${d.replace(/-/g, " ")}: ${n}`).join(", ");
}
// Learning: POST /api/learn fine-tunes on the corrections in the background; the page follows
// GET /api/learn until the server swaps to the new model (or refuses it, saying why).
const learnButton = document.getElementById("learn");
const learnStatus = document.getElementById("learn-status");
const percent = (v) => (v === null || v === undefined ? "-" : `${(v * 100).toFixed(1)}%`);

learnButton.addEventListener("click", async () => {
  const response = await fetch("/api/learn", { method: "POST" });
  const answer = await response.json();
  if (!response.ok) {
    learnStatus.textContent = answer.detail || `error ${response.status}`;
    learnStatus.classList.add("error");
    return;
  }
  followLearning();
});

async function followLearning() {
  const response = await fetch("/api/learn");
  if (!response.ok) return;
  const s = await response.json();
  learnButton.disabled = !s.allowed || s.state === "running";
  learnStatus.classList.toggle("error", s.state === "refused" || s.state === "failed");
  if (s.state === "running") {
    learnStatus.textContent = `Learning from ${s.corrections} corrections... ` +
      `${Math.round(s.progress * 100)}%`;
    setTimeout(followLearning, 1000);
  } else if (s.state === "done" || s.state === "refused") {
    const figures = `kept-apart corrections ${percent(s.before.corrections_accuracy)} -> ` +
      `${percent(s.after.corrections_accuracy)}, MNIST validation ` +
      `${percent(s.before.val_accuracy)} -> ${percent(s.after.val_accuracy)}`;
    learnStatus.textContent = s.state === "done"
      ? `Learned: now serving ${s.model} (${figures}).` : `${s.reason} (${figures})`;
    showModelName();
  } else if (s.state === "failed") {
    learnStatus.textContent = s.reason;
  }
}

showTeach();
refreshCounts();
followLearning();
