// "A number": a wide pad read with POST /api/predict?multi=true. Each digit is boxed on the
// drawing and listed under the answer; picking one (a click, or its box on the pad) makes it
// the one a correction applies to, kept as that piece (app.js's `correct`).
"use strict";
const boxes = document.getElementById("boxes");
const boxesCtx = boxes.getContext("2d");
const rowOut = document.getElementById("row");
const WIDE = 3;  // the number pad is this many digit pads wide
let reading = null;  // the last answer in number mode

function setMode(value) {
  mode = value;
  document.body.classList.toggle("number-mode", mode === "number");
  document.getElementById("title").textContent =
    mode === "number" ? "Write a number" : "Draw a digit";
  document.getElementById("answer-label").textContent = mode === "number" ? "number" : "digit";
  const width = mode === "number" ? WIDE * pad.height : pad.height;
  pad.width = boxes.width = width;
  clearPad();
}

for (const input of document.querySelectorAll("input[name=mode]")) {
  input.addEventListener("change", () => { if (input.checked) setMode(input.value); });
}

function clearNumber() {
  reading = null;
  rowOut.replaceChildren();
  boxesCtx.clearRect(0, 0, boxes.width, boxes.height);
}

function showNumber(answer) {
  reading = answer;
  const refused = answer.number === null;
  digitOut.textContent = refused ? "not a number" : answer.number;
  digitOut.classList.toggle("refused", refused);
  const sure = (d) => d.probabilities[d.digit ?? d.closest];
  setStatus(refused
    ? `${answer.reason}; closest: ${answer.closest}`
    : `${answer.digits.length} digit${answer.digits.length === 1 ? "" : "s"}, the least sure ` +
      `${(Math.min(...answer.digits.map(sure)) * 100).toFixed(1)}%`);
  rowOut.replaceChildren();
  answer.digits.forEach((d, k) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.position = String(k + 1);
    button.classList.toggle("refused", d.digit === null);
    button.innerHTML = `<span class="d"></span><span class="p"></span>`;
    button.querySelector(".d").textContent = d.digit === null ? "?" : String(d.digit);
    button.querySelector(".p").textContent = `${(sure(d) * 100).toFixed(0)}%`;
    button.title = d.digit === null ? `not a digit (closest: ${d.closest})` : "";
    button.addEventListener("click", () => choose(k));
    item.appendChild(button);
    rowOut.appendChild(item);
  });
  // The first piece that is not a digit, else the least sure one: the likeliest to correct.
  const refusedAt = answer.digits.findIndex((d) => d.digit === null);
  const scores = answer.digits.map(sure);
  choose(refusedAt >= 0 ? refusedAt : scores.indexOf(Math.min(...scores)));
}

function choose(k) {
  const d = reading.digits[k];
  answered = { pixels: d.preprocessed, digit: d.digit ?? d.closest, refused: d.digit === null,
               position: k + 1 };
  for (const button of rowOut.querySelectorAll("button")) {
    button.classList.toggle("chosen", button.dataset.position === String(k + 1));
  }
  drawBoxes(k);
  showTeach();
}

function drawBoxes(chosen) {
  boxesCtx.clearRect(0, 0, boxes.width, boxes.height);
  // Labels and lines keep their size on screen however small the pad is shown (a phone).
  const k = boxes.width / (boxes.getBoundingClientRect().width || boxes.width);
  boxesCtx.font = `bold ${Math.round(16 * k)}px system-ui, sans-serif`;
  reading.digits.forEach((d, i) => {
    // boxes come in the sent image's pixels: a drawing's are the pad's, an upload's are scaled
    const [x0, y0, x1, y1] = d.box.map((v, i) => v * placed.scale + (i % 2 ? placed.dy : placed.dx));
    const colour = i === chosen ? "#d9480f" : d.digit === null ? "#8a4b00" : "#1c7ed6";
    boxesCtx.strokeStyle = boxesCtx.fillStyle = colour;
    boxesCtx.lineWidth = (i === chosen ? 3 : 2) * k;
    boxesCtx.strokeRect(x0 - 3, y0 - 3, x1 - x0 + 6, y1 - y0 + 6);
    const label = d.digit === null ? "?" : String(d.digit);
    boxesCtx.fillText(label, x0, Math.max(16 * k, y0 - 6 * k));
  });
}
