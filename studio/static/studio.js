// The studio page: a thin client of the JSON API in studio/app.py. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { path: null, digest: null, dirty: false, scenes: [], scene: null, picture: null, checkTimer: null };

async function api(method, url, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.error || data.detail || `${response.status} ${response.statusText}`);
    error.problems = data.problems;
    throw error;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------- the editor

function text() { return $("editor").value; }

function updateGutter() {
  const count = text().split("\n").length;
  $("gutter").textContent = Array.from({ length: count }, (_, i) => i + 1).join("\n");
  $("gutter").scrollTop = $("editor").scrollTop;
}

function showProblems(problems) {
  const list = $("problems");
  list.innerHTML = "";
  for (const problem of problems) {
    const item = document.createElement("li");
    item.className = "problem";
    item.textContent = problem.text;
    item.dataset.line = problem.line;
    item.addEventListener("click", () => jumpTo(problem.line, problem.column));
    list.appendChild(item);
  }
  const status = $("problems-state");
  status.className = problems.length ? "bad" : "ok";
  status.textContent = problems.length ? `${problems.length} problem(s)` : "no problems";
}

function jumpTo(line, column) {
  const lines = text().split("\n");
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  offset += Math.max(0, column - 1);
  const editor = $("editor");
  editor.focus();
  editor.setSelectionRange(offset, offset + 1);
  editor.scrollTop = Math.max(0, (line - 5) * 17);
  updateGutter();
}

function setSaveState() {
  $("save-state").textContent = state.dirty ? "unsaved changes" : "saved";
}

function applyChecked(data) {
  showProblems(data.problems);
  if (data.scenes) setOutline(data.scenes);
}

async function check() {
  const data = await api("POST", "/api/check", { path: state.path, text: text() });
  applyChecked(data);
  if (data.scenes) refreshPicture();
}

function onInput() {
  state.dirty = true;
  setSaveState();
  updateGutter();
  clearTimeout(state.checkTimer);
  state.checkTimer = setTimeout(() => check().catch(report), 300);
}

async function save() {
  const data = await api("POST", "/api/save", { path: state.path, text: text(), digest: state.digest });
  state.digest = data.digest;
  state.dirty = false;
  setSaveState();
  applyChecked(data);
}

async function openScreenplay(path) {
  const data = await api("GET", `/api/screenplay?path=${encodeURIComponent(path)}`);
  state.path = path;
  state.digest = data.digest;
  state.dirty = false;
  $("editor").value = data.text;
  updateGutter();
  setSaveState();
  state.scene = null;
  applyChecked(data);
  refreshPicture();
  const url = new URL(location.href);
  url.searchParams.set("file", path);
  history.replaceState(null, "", url);
}

function setOutline(scenes) {
  state.scenes = scenes;
  const ids = scenes.map((s) => s.id);
  if (!ids.includes(state.scene)) state.scene = ids[0] || null;
  fillSelect($("scene-select"), ids.map((id) => [id, id]), state.scene);
  const scope = $("preview-scope");
  const chosen = scope.value;
  fillSelect(scope, [...ids.map((id) => [id, `scene ${id}`]), ["", "whole screenplay"]], chosen || state.scene);
  showLines();
}

function fillSelect(select, options, chosen) {
  select.innerHTML = "";
  for (const [value, label] of options) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    select.appendChild(option);
  }
  if (chosen !== undefined && chosen !== null && options.some(([v]) => v === chosen)) select.value = chosen;
}

// ---------------------------------------------------------------------------------------------- the cast

async function refreshPicture() {
  if (!state.scene) return;
  try {
    const picture = await api("POST", "/api/scene-picture", { path: state.path, text: text(), scene: state.scene });
    state.picture = picture;
    const image = $("scene-image");
    if (!image.src.endsWith(picture.image_url)) image.src = picture.image_url;
    $("mask-overlay").src = picture.overlay;
    $("mask-overlay").style.display = $("mask-toggle").checked ? "" : "none";
    $("mask-problem").textContent = picture.mask_problem || "";
    fillSelect($("draw-character"), picture.characters.map((c) => [c.name, c.display_name]), $("draw-character").value);
    const latent = picture.latent ? `latent grid ${picture.latent.cols}×${picture.latent.rows}` : "no latent grid";
    $("cast-note").textContent = `${picture.width}×${picture.height} image → bucket ${picture.bucket.width}×` +
      `${picture.bucket.height}, ${latent}. Drag a box to move it, its corner to resize, or draw a new one.`;
    drawBoxes();
  } catch (error) {
    report(error);
  }
}

function scale() {
  const image = $("scene-image");
  return image.clientWidth && state.picture ? image.clientWidth / state.picture.width : 1;
}

function drawBoxes() {
  const layer = $("boxes");
  layer.innerHTML = "";
  if (!state.picture) return;
  const s = scale();
  for (const member of state.picture.cast) {
    const box = document.createElement("div");
    box.className = "box" + (member.placement === "bbox" ? "" : " side");
    box.dataset.name = member.name;
    box.style.borderColor = member.color;
    placeBox(box, member.box, s);
    const label = document.createElement("span");
    label.className = "label";
    label.style.background = member.color;
    const role = member.person ? `person ${member.person}` : "silent";
    label.textContent = `${member.display_name} (${member.placement}, ${role})`;
    const handle = document.createElement("div");
    handle.className = "handle";
    box.append(label, handle);
    box.addEventListener("pointerdown", (event) => startDrag(event, member, event.target === handle ? "resize" : "move"));
    layer.appendChild(box);
  }
}

function placeBox(element, [x0, y0, x1, y1], s) {
  element.style.left = `${x0 * s}px`;
  element.style.top = `${y0 * s}px`;
  element.style.width = `${(x1 - x0) * s}px`;
  element.style.height = `${(y1 - y0) * s}px`;
}

function imagePoint(event) {
  const rect = $("scene-image").getBoundingClientRect();
  const s = scale();
  const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
  return [clamp((event.clientX - rect.left) / s, state.picture.width), clamp((event.clientY - rect.top) / s, state.picture.height)];
}

function startDrag(event, member, mode) {
  event.preventDefault();
  event.stopPropagation();
  const start = imagePoint(event);
  const original = member ? [...member.box] : [start[0], start[1], start[0], start[1]];
  let element = member ? document.querySelector(`.box[data-name="${member.name}"]`) : null;
  const name = member ? member.name : $("draw-character").value;
  if (!element) {
    element = document.createElement("div");
    element.className = "box";
    element.dataset.name = name;
    const character = state.picture.characters.find((c) => c.name === name);
    element.style.borderColor = character ? character.color : "#fff";
    $("boxes").appendChild(element);
  }
  let box = original;
  const move = (e) => {
    const [x, y] = imagePoint(e);
    const dx = x - start[0], dy = y - start[1];
    if (mode === "move") {
      const w = original[2] - original[0], h = original[3] - original[1];
      const x0 = Math.min(Math.max(original[0] + dx, 0), state.picture.width - w);
      const y0 = Math.min(Math.max(original[1] + dy, 0), state.picture.height - h);
      box = [x0, y0, x0 + w, y0 + h];
    } else if (mode === "resize") {
      box = [original[0], original[1], Math.max(x, original[0] + 1), Math.max(y, original[1] + 1)];
    } else {
      box = [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)];
    }
    placeBox(element, box, scale());
  };
  const up = async () => {
    window.removeEventListener("pointermove", move);
    window.removeEventListener("pointerup", up);
    const rounded = box.map(Math.round);
    if (rounded[2] - rounded[0] < 2 || rounded[3] - rounded[1] < 2 || rounded.every((v, i) => v === Math.round(original[i]))) {
      drawBoxes();
      return;
    }
    await placeCast(name, rounded);
  };
  window.addEventListener("pointermove", move);
  window.addEventListener("pointerup", up);
}

async function placeCast(character, bbox) {
  try {
    const data = await api("POST", "/api/cast", {
      path: state.path, text: text(), digest: state.digest, scene: state.scene, character, bbox,
    });
    const editor = $("editor");
    const scroll = editor.scrollTop;
    editor.value = data.text;
    editor.scrollTop = scroll;
    state.digest = data.digest;
    state.dirty = false;
    setSaveState();
    updateGutter();
    applyChecked(data);
    await refreshPicture();
    $("save-state").textContent = `saved: ${character} at [${bbox.join(", ")}]`;
  } catch (error) {
    report(error);
    refreshPicture();
  }
}

// ---------------------------------------------------------------------------------------------- hearing

function showLines() {
  const list = $("lines");
  list.innerHTML = "";
  const scene = state.scenes.find((s) => s.id === state.scene);
  if (!scene) return;
  for (const line of scene.lines) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.className = "hear";
    button.dataset.line = line.index;
    button.textContent = "▶";
    button.addEventListener("click", () => hearLine(line.index).catch(report));
    item.append(button, `${line.speaker}: ${line.text}`);
    list.appendChild(item);
  }
}

async function play(url, note) {
  const audio = $("line-audio");
  audio.src = url;
  $("audio-state").textContent = note;
  try { await audio.play(); } catch (error) { /* autoplay refused: the controls still play it */ }
}

async function hearLine(index) {
  $("audio-state").textContent = "voicing…";
  const data = await api("POST", "/api/hear-line", { path: state.path, text: text(), scene: state.scene, line: index });
  await play(data.url, `line ${index}: ${data.seconds.toFixed(2)} s${data.voiced_now ? " (voiced now)" : " (cached)"}`);
}

async function hearScene() {
  $("audio-state").textContent = "voicing the scene…";
  const data = await api("POST", "/api/hear-scene", { path: state.path, text: text(), scene: state.scene });
  drawTimeline(data.timeline);
  await play(data.url, `scene ${state.scene}: ${data.seconds.toFixed(2)} s mix`);
}

function drawTimeline(timeline) {
  const lane = 26, left = 110, width = 760, top = 18;
  const height = top + lane * timeline.lanes.length + 6;
  const x = (t) => left + (t / timeline.duration) * (width - left - 10);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const add = (tag, attrs, content) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (content !== undefined) node.textContent = content;
    svg.appendChild(node);
    return node;
  };
  for (let t = 0; t <= timeline.duration; t += timeline.duration > 40 ? 10 : 2) {
    add("line", { x1: x(t), x2: x(t), y1: top - 4, y2: height, stroke: "#e3e3e3" });
    add("text", { x: x(t) + 2, y: 12, "font-size": 10, fill: "#888" }, `${t}s`);
  }
  timeline.lanes.forEach((l, row) => {
    add("text", { x: 4, y: top + row * lane + 17, "font-size": 12, fill: l.color }, `${l.display_name} · ${l.position}`);
  });
  for (const line of timeline.lines) {
    const row = timeline.lanes.findIndex((l) => l.speaker === line.speaker);
    const rect = add("rect", {
      x: x(line.start), y: top + row * lane + 3, width: Math.max(2, x(line.end) - x(line.start)), height: lane - 6,
      rx: 3, fill: timeline.lanes[row].color, class: "timeline-line", "data-line": line.index, cursor: "pointer",
    });
    add("title", {}, `${line.start.toFixed(2)}–${line.end.toFixed(2)} s: ${line.text}`);
    rect.addEventListener("click", () => hearLine(line.index).catch(report));
  }
  $("timeline").innerHTML = "";
  $("timeline").appendChild(svg);
}

// ---------------------------------------------------------------------------------------------- previews

async function startPreview() {
  if (state.dirty) await save();
  const scene = $("preview-scope").value || null;
  $("preview-state").textContent = "starting…";
  $("preview-progress").value = 0;
  let job = await api("POST", "/api/preview", { path: state.path, scene });
  while (job.state === "queued" || job.state === "running") {
    const total = job.chunks_total || 1;
    $("preview-progress").value = job.chunks_done / total;
    $("preview-state").textContent = `${job.state}: ${job.chunks_done}/${job.chunks_total || "?"} chunks`;
    await new Promise((resolve) => setTimeout(resolve, 500));
    job = await api("GET", `/api/preview/${job.id}`);
  }
  if (job.state === "failed") throw new Error(`preview failed: ${job.error}`);
  $("preview-progress").value = 1;
  $("preview-state").textContent =
    `done: ${job.seconds.toFixed(2)} s of video, ${job.chunks_total} chunks, ${job.wall_seconds} s wall`;
  const video = $("preview-video");
  video.dataset.expected = job.seconds;
  video.src = `/api/file?path=${encodeURIComponent(job.video)}&t=${Date.now()}`;
  video.load();
}

// ---------------------------------------------------------------------------------------------- the pool

async function poolStatus() {
  const data = await api("GET", "/api/pool");
  $("pool-status").textContent = data.api_url ? `Prefect API ${data.api_url}: ${data.message}` : data.message;
  const names = ["render-screenplay/gpu-pool", "render-screenplay/local"];
  fillSelect($("deployment"), names.map((n) => [n, data.deployments[n] === false ? `${n} (not deployed)` : n]), $("deployment").value);
  $("submit").disabled = !data.api_url;
}

function poolSettings() {
  const scenes = $("pool-scenes").value.split(",").map((s) => s.trim()).filter(Boolean);
  return { path: state.path, deployment: $("deployment").value, renderer: $("renderer").value, scenes: scenes.length ? scenes : null };
}

async function plan() {
  $("plan-text").textContent = "estimating…";
  const data = await api("POST", "/api/plan", poolSettings());
  $("plan-text").textContent = data.text;
}

async function submit() {
  if (state.dirty) await save();
  const run = await api("POST", "/api/submit", poolSettings());
  $("run-state").textContent = `${run.name}: submitted to ${run.deployment}`;
  $("run-report").textContent = "";
  for (let failures = 0; ; ) {
    let status;
    try {
      status = await api("GET", `/api/runs/${run.id}`);
      failures = 0;
    } catch (error) {
      if (++failures > 5) throw error;  // a busy API may miss a poll or two
      await new Promise((resolve) => setTimeout(resolve, 2000));
      continue;
    }
    $("run-state").textContent = `${status.name}: ${status.state}`;
    $("run-state").dataset.state = status.state;
    const scenes = status.scene_runs.length ? `; scene runs: ${status.scene_runs.map((r) => `${r.name} ${r.state}`).join(", ")}` : "";
    $("run-chunks").textContent = `chunks done: ${status.chunks_done} (${status.chunks_cached} cached)${scenes}`;
    if (status.report) $("run-report").textContent = status.report.markdown;
    if (status.final && (status.report || !status.ok)) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// ---------------------------------------------------------------------------------------------- wiring

function report(error) {
  if (error.problems) showProblems(error.problems);
  $("save-state").textContent = error.message;
}

async function start() {
  $("editor").addEventListener("input", onInput);
  $("editor").addEventListener("scroll", () => { $("gutter").scrollTop = $("editor").scrollTop; });
  $("editor").addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "s") { event.preventDefault(); save().catch(report); }
  });
  $("save").addEventListener("click", () => save().catch(report));
  $("screenplay-select").addEventListener("change", (e) => openScreenplay(e.target.value).catch(report));
  $("scene-select").addEventListener("change", (e) => { state.scene = e.target.value; showLines(); refreshPicture(); });
  $("mask-toggle").addEventListener("change", () => { $("mask-overlay").style.display = $("mask-toggle").checked ? "" : "none"; });
  $("cast-stage").addEventListener("pointerdown", (event) => { if (state.picture) startDrag(event, null, "draw"); });
  $("scene-image").addEventListener("load", drawBoxes);
  window.addEventListener("resize", drawBoxes);
  $("hear-scene").addEventListener("click", () => hearScene().catch(report));
  $("preview-start").addEventListener("click", () => startPreview().catch((e) => { $("preview-state").textContent = e.message; }));
  $("plan").addEventListener("click", () => plan().catch((e) => { $("plan-text").textContent = e.message; }));
  $("submit").addEventListener("click", () => submit().catch((e) => { $("run-state").textContent = e.message; }));
  const list = await api("GET", "/api/screenplays");
  $("folder").textContent = list.folder;
  fillSelect($("screenplay-select"), list.screenplays.map((p) => [p, p]));
  const wanted = new URL(location.href).searchParams.get("file");
  const first = list.screenplays.includes(wanted) ? wanted : list.screenplays[0];
  if (first) {
    $("screenplay-select").value = first;
    await openScreenplay(first);
  }
  poolStatus().catch((e) => { $("pool-status").textContent = e.message; });
}

start().catch(report);
