/// The drawing page doodled serves at `/`: draw with a mouse, a pen or a finger and see the model's guesses
/// while drawing (a request every 150 ms of drawing and at each stroke's end, strokes in canvas coordinates,
/// format `raw`); clear and undo; and a game like Quick, Draw!'s (a prompt, 20 seconds, "Oh, I know, it's ...!").
/// Self-contained: no CDN, no build step. It calls the API relative to its own address (so it works behind a
/// proxy, under a path prefix), or at `?server=http://host:port/` when served from elsewhere (that origin must
/// then be in `http-cors-origins`).
enum DrawingPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>doodled: draw something</title>
<link rel="stylesheet" href="app.css">
</head>
<body>
<header>
  <h1>doodled</h1>
  <p id="model">loading the model…</p>
</header>
<main>
  <section class="board">
    <div id="prompt" hidden></div>
    <canvas id="canvas" width="480" height="480" aria-label="drawing area"></canvas>
    <div class="tools">
      <button id="undo" type="button">Undo</button>
      <button id="clear" type="button">Clear</button>
      <button id="play" type="button">Play a round</button>
      <span id="timer" hidden></span>
    </div>
    <p id="game-message" role="status"></p>
  </section>
  <section class="guesses">
    <h2>I see…</h2>
    <ol id="guesses"></ol>
    <p id="status" class="quiet">Draw in the box.</p>
  </section>
</main>
<footer class="quiet">Drawings are not stored. Model trained on Google's Quick, Draw! data (CC BY 4.0).</footer>
<script src="app.js"></script>
</body>
</html>
"""#

    static let style = #"""
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.4 system-ui, sans-serif; color: #1d1d1f; background: #f4f4f6; }
header, main, footer { max-width: 980px; margin: 0 auto; padding: 12px 20px; }
header h1 { margin: 0; font-size: 24px; }
main { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.board { flex: 0 1 480px; }
canvas { width: 100%; max-width: 480px; aspect-ratio: 1; background: #fff; border: 2px solid #c9c9d1;
         border-radius: 8px; touch-action: none; cursor: crosshair; display: block; }
.tools { display: flex; gap: 8px; margin-top: 8px; align-items: center; }
button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid #a8a8b3; background: #fff; cursor: pointer; }
button:hover { background: #eef; }
#prompt { font-size: 22px; margin-bottom: 8px; }
#prompt strong { color: #2047c5; }
#timer { font-variant-numeric: tabular-nums; margin-left: auto; font-weight: 600; }
#game-message { min-height: 1.4em; font-size: 20px; font-weight: 600; color: #16803c; }
#game-message.lost { color: #a33; }
.guesses { flex: 1 1 260px; }
.guesses h2 { margin: 0 0 8px; font-size: 18px; }
#guesses { list-style: none; padding: 0; margin: 0; }
#guesses li { position: relative; padding: 6px 10px; margin-bottom: 6px; background: #fff; border-radius: 6px; overflow: hidden; }
#guesses li .bar { position: absolute; inset: 0 auto 0 0; background: #dfe6fb; z-index: 0; }
#guesses li span { position: relative; z-index: 1; }
#guesses li .score { float: right; font-variant-numeric: tabular-nums; }
.quiet { color: #6b6b76; font-size: 14px; }
"""#

    static let script = #"""
"use strict";
(() => {
  const query = new URLSearchParams(location.search);
  // Another doodled (or a proxy) than the one that served the page: ?server=http://host:port/
  const base = (query.get("server") || "").replace(/\/?$/, query.get("server") ? "/" : "");
  const canvas = document.getElementById("canvas");
  const pen = canvas.getContext("2d");
  const guessList = document.getElementById("guesses");
  const statusLine = document.getElementById("status");
  const message = document.getElementById("game-message");
  const promptLine = document.getElementById("prompt");
  const timerLine = document.getElementById("timer");
  const strokes = [];          // [[xs], [ys], [ts]] per stroke, canvas coordinates (CSS pixels)
  let current = null;          // the stroke being drawn
  let started = 0;             // when the drawing began (ms)
  let labels = [];
  let sent = 0, answered = 0;  // request sequence: a late answer to an older drawing is dropped
  let lastSent = 0, dirty = false, inFlight = false;
  let game = null;             // {prompt, deadline, timer, won}
  const stats = window.doodle = { requests: 0, answers: 0, lastLatencyMs: 0, guesses: [] };

  function api(path) { return base + path; }

  function resize() {
    const ratio = window.devicePixelRatio || 1;
    const box = canvas.getBoundingClientRect();
    canvas.width = Math.round(box.width * ratio);
    canvas.height = Math.round(box.height * ratio);
    pen.setTransform(ratio, 0, 0, ratio, 0, 0);
    redraw();
  }

  function redraw() {
    pen.clearRect(0, 0, canvas.width, canvas.height);
    pen.lineWidth = 4; pen.lineCap = "round"; pen.lineJoin = "round"; pen.strokeStyle = "#111";
    for (const s of strokes.concat(current ? [current] : [])) {
      pen.beginPath();
      pen.moveTo(s[0][0], s[1][0]);
      for (let i = 0; i < s[0].length; i++) pen.lineTo(s[0][i], s[1][i]);
      if (s[0].length === 1) pen.lineTo(s[0][0] + 0.01, s[1][0]);
      pen.stroke();
    }
  }

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top, Math.round(performance.now() - started)];
  }

  function add(stroke, p) {
    const n = stroke[0].length;
    if (n && stroke[0][n - 1] === p[0] && stroke[1][n - 1] === p[1]) return;
    stroke[0].push(p[0]); stroke[1].push(p[1]); stroke[2].push(p[2]);
  }

  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    if (!strokes.length && !current) started = performance.now();
    current = [[], [], []];
    add(current, point(event));
    dirty = true;
    redraw();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!current) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of (events.length ? events : [event])) add(current, point(e));
    dirty = true;
    redraw();
    if (performance.now() - lastSent >= 150) predict();
  });
  function end() {
    if (!current) return;
    strokes.push(current);
    current = null;
    dirty = true;
    redraw();
    predict(true);
  }
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  // While the pen rests mid-stroke, keep guessing every 150 ms.
  setInterval(() => { if (current && dirty && performance.now() - lastSent >= 150) predict(); }, 50);

  async function predict(force) {
    const drawing = strokes.concat(current && current[0].length ? [current] : []);
    if (!drawing.length || (!dirty && !force) || (inFlight && !force)) return;
    dirty = false;
    inFlight = true;
    lastSent = performance.now();
    const sequence = ++sent;
    stats.requests++;
    const t0 = performance.now();
    try {
      const response = await fetch(api("v1/predict"), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ drawing, format: "raw", top_k: 5 }),
      });
      const answer = await response.json();
      if (sequence < answered) return;
      answered = sequence;
      stats.answers++;
      stats.lastLatencyMs = performance.now() - t0;
      if (!response.ok) {
        statusLine.textContent = answer.error ? `${answer.error.code}: ${answer.error.message}` : `HTTP ${response.status}`;
        return;
      }
      show(answer.predictions);
    } catch (error) {
      statusLine.textContent = `cannot reach the server: ${error}`;
    } finally {
      inFlight = false;
    }
  }

  function show(predictions) {
    stats.guesses = predictions.map((p) => p.label);
    guessList.replaceChildren(...predictions.map((p) => {
      const item = document.createElement("li");
      item.dataset.label = p.label;
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = `${Math.max(1, Math.round(100 * p.score))}%`;
      const name = document.createElement("span");
      name.className = "label";
      name.textContent = p.label;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = `${(100 * p.score).toFixed(1)} %`;
      item.append(bar, name, score);
      return item;
    }));
    statusLine.textContent = `${stats.answers} answers, the last in ${stats.lastLatencyMs.toFixed(0)} ms`;
    if (game && !game.over && predictions.length && predictions[0].label === game.prompt) finish(true);
  }

  function clear() {
    strokes.length = 0;
    current = null;
    sent++; answered = sent;
    guessList.replaceChildren();
    stats.guesses = [];
    statusLine.textContent = "Draw in the box.";
    redraw();
  }
  document.getElementById("clear").addEventListener("click", clear);
  document.getElementById("undo").addEventListener("click", () => {
    strokes.pop();
    dirty = true;
    redraw();
    if (strokes.length) predict(true); else clear();
  });

  function play() {
    if (!labels.length) return;
    if (game && game.timer) clearInterval(game.timer);
    clear();
    const prompt = query.get("prompt") || labels[Math.floor(Math.random() * labels.length)];
    game = { prompt, deadline: performance.now() + 20000, over: false };
    promptLine.hidden = false;
    promptLine.innerHTML = "";
    promptLine.append("Draw: ", Object.assign(document.createElement("strong"), { textContent: prompt }));
    message.textContent = "";
    message.className = "";
    timerLine.hidden = false;
    const tick = () => {
      const left = Math.max(0, game.deadline - performance.now());
      timerLine.textContent = `0:${String(Math.ceil(left / 1000)).padStart(2, "0")}`;
      if (left <= 0) finish(false);
    };
    tick();
    game.timer = setInterval(tick, 200);
  }
  function finish(won) {
    if (!game || game.over) return;
    game.over = true;
    clearInterval(game.timer);
    if (won) {
      message.textContent = `Oh, I know, it's ${game.prompt}!`;
      message.className = "won";
    } else {
      const guess = stats.guesses[0];
      message.textContent = `Time's up! ${guess ? `I thought it was ${guess}.` : "I could not guess it."}`;
      message.className = "lost";
    }
  }
  document.getElementById("play").addEventListener("click", play);

  fetch(api("v1/model")).then((r) => r.json()).then((info) => {
    labels = info.labels;
    document.getElementById("model").textContent = `${info.name} v${info.version}: ${labels.length} things I can recognise`;
  }).catch((error) => {
    document.getElementById("model").textContent = `cannot reach the server: ${error}`;
  });
  window.addEventListener("resize", resize);
  resize();
})();
"""#
}
