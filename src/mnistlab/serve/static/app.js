// Draw on #pad; while drawing, send the canvas as a PNG to /api/predict (one request in flight at
// a time) and show every model's probabilities side by side, plus the 28x28 image the models saw.
// "Upload a photo" sends a PNG or JPEG file instead, shows it on the pad and the 28x28 the models saw.
// "Show what each model looks at" posts that 28x28 to /api/explain (one request in flight, the latest image
// next) and draws each model's Integrated Gradients map for its top class under its probabilities.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const statusLine = document.getElementById("status");
const panels = document.getElementById("models");
const PEN_WIDTH = 18; // px on the 280x280 canvas: about MNIST's stroke width once scaled to 20x20
const MAX_UPLOAD_BYTES = 2 * 1024 * 1024; // the server's body limit; larger photos are scaled down first
const UPLOAD_LONGEST = 1024; // px; the longest side a scaled-down photo keeps (the server works at this size)

let drawing = false, hasInk = false, inFlight = false, pending = false, last = null, generation = 0;
let showingPhoto = false; // the pad shows an uploaded photo: drawing starts on a clean pad

function resetPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  seen.fillStyle = "#000";
  seen.fillRect(0, 0, 28, 28);
  hasInk = false;
  showingPhoto = false;
  generation += 1; // answers to requests sent before the clear are dropped
  for (const panel of panels.querySelectorAll(".model")) showProbabilities(panel, null);
  clearAttributions();
  statusLine.textContent = "Draw a digit";
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

function strokeTo(event) {
  const [x, y] = point(event);
  ink.strokeStyle = "#000";
  ink.lineWidth = PEN_WIDTH;
  ink.lineCap = ink.lineJoin = "round";
  ink.beginPath();
  if (last) {
    ink.moveTo(...last);
    ink.lineTo(x, y);
    ink.stroke();
  } else { // a stroke starts with a dot: a zero-length line draws nothing
    ink.fillStyle = "#000";
    ink.arc(x, y, PEN_WIDTH / 2, 0, 2 * Math.PI);
    ink.fill();
  }
  last = [x, y];
  hasInk = true;
  requestPrediction();
}

pad.addEventListener("pointerdown", (event) => {
  if (showingPhoto) resetPad();
  drawing = true;
  last = null;
  pad.setPointerCapture(event.pointerId);
  strokeTo(event);
});
pad.addEventListener("pointermove", (event) => { if (drawing) strokeTo(event); });
for (const name of ["pointerup", "pointercancel"]) {
  pad.addEventListener(name, () => { drawing = false; last = null; requestPrediction(); });
}
document.getElementById("clear").addEventListener("click", resetPad);

const photoInput = document.getElementById("photo");
document.getElementById("upload").addEventListener("click", () => photoInput.click());
photoInput.addEventListener("change", async () => {
  const file = photoInput.files[0];
  photoInput.value = ""; // choosing the same file again still fires "change"
  if (file) await uploadPhoto(file);
});

async function uploadPhoto(file) {
  resetPad();
  showingPhoto = true;
  const sent = generation;
  statusLine.textContent = `Reading ${file.name}…`;
  try {
    const bitmap = await createImageBitmap(file); // applies the photo's EXIF rotation, as the server does
    drawOnPad(bitmap);
    const body = file.size <= MAX_UPLOAD_BYTES && ["image/png", "image/jpeg"].includes(file.type)
      ? file : await scaledDown(bitmap);
    const asNumber = document.getElementById("as-number").checked;
    const url = asNumber ? "/api/predict?number=true" : "/api/predict";
    const response = await fetch(url, { method: "POST", headers: { "Content-Type": body.type }, body });
    const answer = await response.json();
    if (sent !== generation) return;
    if (!response.ok) { statusLine.textContent = `${file.name}: ${answer.error || `error ${response.status}`}`; return; }
    if (asNumber) { showNumber(answer, bitmap, body === file ? bitmap.width : (await createImageBitmap(body)).width); return; }
    showAnswer(answer);
  } catch (error) {
    if (sent === generation) statusLine.textContent = `${file.name}: cannot send it (${error.message})`;
  }
}

function showNumber(answer, bitmap, sentWidth) { // outline each digit's box on the photo; the number in the status line
  const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
  const toPad = scale * bitmap.width / sentWidth; // boxes are in the sent image's pixels
  const left = (pad.width - bitmap.width * scale) / 2, top = (pad.height - bitmap.height * scale) / 2;
  ink.save();
  ink.strokeStyle = "#e4572e";
  ink.lineWidth = 2;
  ink.font = "16px sans-serif";
  ink.fillStyle = "#e4572e";
  for (const digit of answer.digits) {
    const [x0, y0, x1, y1] = digit.box.map((value) => value * toPad);
    ink.strokeRect(left + x0, top + y0, x1 - x0, y1 - y0);
    ink.fillText(digit.predictions[0].top_class, left + x0, top + y0 - 4);
  }
  ink.restore();
  statusLine.textContent = `Read as the number ${answer.number} (${answer.digits.length} digits)`;
}

function drawOnPad(bitmap) { // the photo, fitted inside the pad on white
  const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
  const width = bitmap.width * scale, height = bitmap.height * scale;
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  ink.drawImage(bitmap, (pad.width - width) / 2, (pad.height - height) / 2, width, height);
}

function scaledDown(bitmap) { // a JPEG whose longest side is at most UPLOAD_LONGEST px
  const scale = Math.min(1, UPLOAD_LONGEST / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
}

function requestPrediction() {
  if (!hasInk) return;
  if (inFlight) { pending = true; return; }
  inFlight = true;
  pending = false;
  const sent = generation;
  pad.toBlob(async (png) => {
    try {
      const response = await fetch("/api/predict", { method: "POST", headers: { "Content-Type": "image/png" }, body: png });
      const answer = await response.json();
      if (sent !== generation) return;
      if (!response.ok) { statusLine.textContent = answer.error || `error ${response.status}`; return; }
      showAnswer(answer);
    } catch (error) {
      statusLine.textContent = `server unreachable (${error.message})`;
    } finally {
      inFlight = false;
      if (pending) requestPrediction();
    }
  }, "image/png");
}

function showAnswer(answer) {
  const pixels = seen.createImageData(28, 28);
  answer.input.forEach((value, index) => {  // in [0, 1], like JSON pixels
    const level = Math.round(value * 255);
    pixels.data.set([level, level, level, 255], index * 4);
  });
  seen.putImageData(pixels, 0, 0);
  requestAttributions(answer.input);
  for (const prediction of answer.predictions) {
    const panel = panels.querySelector(`.model[data-model="${CSS.escape(prediction.model)}"]`);
    if (panel) showProbabilities(panel, prediction);
  }
  statusLine.textContent = answer.predictions
    .map((p) => `${p.model}: ${p.top_class}${p.not_sure ? " (not sure)" : ""}`).join(" | ");
}

function showProbabilities(panel, prediction) {
  const top = panel.querySelector(".top");
  top.textContent = prediction ? prediction.top_class : "";
  top.dataset.topClass = prediction ? prediction.top_class : "";
  if (prediction) {
    const share = document.createElement("small");
    share.textContent = `${(100 * prediction.top_probability).toFixed(1)}%`;
    top.append(share);
    if (prediction.not_sure) {  // below the checkpoint's threshold, chosen on validation digits
      const unsure = document.createElement("small");
      unsure.className = "not-sure";
      unsure.textContent = "not sure";
      unsure.title = "the model is less confident than on 95% of the digits it was validated on";
      top.append(unsure);
    }
  }
  panel.querySelectorAll(".bar").forEach((bar, index) => {
    const probability = prediction ? prediction.probabilities[index] : 0;
    bar.querySelector(".fill").style.width = `${(100 * probability).toFixed(1)}%`;
    bar.querySelector(".value").textContent = prediction ? `${(100 * probability).toFixed(1)}%` : "";
    bar.classList.toggle("best", !!prediction && prediction.classes[index] === prediction.top_class);
  });
}

function buildPanel(model) {
  const panel = document.createElement("article");
  panel.className = "model";
  panel.dataset.model = model.name;
  const title = document.createElement("h2");
  title.textContent = model.name;
  const meta = document.createElement("div");
  meta.className = "meta";
  const accuracy = model.test_accuracy == null ? "not tested" : `${(100 * model.test_accuracy).toFixed(2)}% test accuracy`;
  const reading = model.preprocess === "plain" ? " · not a digit model: sees the image resized as it is" : "";
  meta.textContent = `${model.dataset} · ${accuracy} · ${model.params.toLocaleString("en")} parameters${reading}`;
  const top = document.createElement("div");
  top.className = "top";
  const attribution = document.createElement("div");
  attribution.className = "attribution";
  attribution.innerHTML = '<canvas width="28" height="28"></canvas><span></span>';
  attribution.querySelector("canvas").setAttribute("aria-label", `what ${model.name} looks at`);
  panel.append(title, meta, top, attribution);
  for (const name of model.class_names) {
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.innerHTML = '<span class="label"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
    bar.querySelector(".label").textContent = name;
    panel.append(bar);
  }
  return panel;
}

// Attributions: computed on demand by the server, only while the toggle is on.
const attributionToggle = document.getElementById("show-attributions");
let explainInFlight = false, explainNext = null, lastInput = null;

function clearAttributions() {
  explainNext = null;
  lastInput = null;
  for (const box of panels.querySelectorAll(".attribution")) {
    const canvas = box.querySelector("canvas");
    canvas.getContext("2d").clearRect(0, 0, 28, 28);
    delete canvas.dataset.drawn;
    box.querySelector("span").textContent = "";
  }
}

function requestAttributions(input) {
  lastInput = input;
  if (!attributionToggle.checked) return;
  if (explainInFlight) { explainNext = input; return; }
  explainInFlight = true;
  explainNext = null;
  const sent = generation;
  fetch("/api/explain", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(input) })
    .then(async (response) => {
      const answer = await response.json();
      if (sent !== generation || !attributionToggle.checked) return;
      if (!response.ok) { statusLine.textContent = answer.error || `error ${response.status}`; return; }
      for (const item of answer.attributions) {
        const panel = panels.querySelector(`.model[data-model="${CSS.escape(item.model)}"]`);
        if (panel) drawAttribution(panel.querySelector(".attribution"), item, answer.input);
      }
    })
    .catch((error) => { statusLine.textContent = `server unreachable (${error.message})`; })
    .finally(() => {
      explainInFlight = false;
      if (explainNext) requestAttributions(explainNext);
    });
}

function drawAttribution(box, item, input) { // red raises the top class, blue lowers it; the ink shows faintly
  const canvas = box.querySelector("canvas");
  const context = canvas.getContext("2d");
  const values = item.integrated_gradients;
  const scale = Math.max(...values.map(Math.abs)) || 1;
  const image = context.createImageData(28, 28);
  values.forEach((value, index) => {
    const strength = Math.min(1, Math.abs(value) / scale);
    const paper = 255 - Math.round(50 * input[index]); // the digit in light gray under the colours
    const fade = Math.round(paper * (1 - strength));
    const pixel = value >= 0 ? [paper, fade, fade] : [fade, fade, paper];
    image.data.set([...pixel, 255], index * 4);
  });
  context.putImageData(image, 0, 0);
  canvas.dataset.drawn = item.top_class;
  box.querySelector("span").textContent = `what raises (red) or lowers (blue) ${item.top_class}`;
}

attributionToggle.addEventListener("change", () => {
  panels.classList.toggle("show-attributions", attributionToggle.checked);
  if (attributionToggle.checked && lastInput) requestAttributions(lastInput);
});

async function start() {
  resetPad();
  try {
    const response = await fetch("/api/models");
    const { models } = await response.json();
    panels.replaceChildren(...models.map(buildPanel));
    panels.classList.toggle("show-attributions", attributionToggle.checked); // a reload may keep the box ticked
    statusLine.textContent = `Draw a digit (${models.length} model${models.length === 1 ? "" : "s"} loaded)`;
  } catch (error) {
    statusLine.textContent = `cannot list models (${error.message})`;
  }
}

start();
