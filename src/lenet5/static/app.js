// Drawing pad: pointer events (mouse, touch, pen); predictions debounced while drawing.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const digitOut = document.getElementById("digit");
const statusOut = document.getElementById("status");
const bars = document.getElementById("bars");
const seen = document.getElementById("seen").getContext("2d");
const DEBOUNCE_MS = 150;
let drawing = false;
let last = null;
let timer = null;
let inked = false;

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  inked = false;
  digitOut.textContent = "?";
  setStatus("Draw something.");
  renderBars(null);
  seen.clearRect(0, 0, 28, 28);
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
  timer = setTimeout(() => { if (inked) pad.toBlob((blob) => send(blob, "image/png")); },
                     DEBOUNCE_MS);
}

let latest = 0;
async function send(body, type) {
  const ticket = ++latest;
  try {
    // For a FormData body fetch sets the multipart Content-Type (with its boundary) itself.
    const headers = type ? { "Content-Type": type } : {};
    const response = await fetch("/api/predict", { method: "POST", body, headers });
    const answer = await response.json();
    if (ticket !== latest) return;  // a newer drawing has been sent since
    if (!response.ok) {
      digitOut.textContent = "?";
      setStatus(answer.detail || `error ${response.status}`, true);
      renderBars(null);
      return;
    }
    digitOut.textContent = String(answer.digit);
    setStatus(`${(answer.probabilities[answer.digit] * 100).toFixed(1)}% sure`);
    renderBars(answer.probabilities, answer.digit);
    renderSeen(answer.preprocessed);
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
  send(form, null);
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
    URL.revokeObjectURL(picture.src);
  };
  picture.src = URL.createObjectURL(file);
}

clearPad();
fetch("/api/model")
  .then((response) => response.json())
  .then((info) => { document.getElementById("model-name").textContent = info.name; })
  .catch(() => {});
