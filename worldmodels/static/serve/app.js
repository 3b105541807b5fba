// The page of `python -m worldmodels.serve`: frames (PNG) and state (JSON) arrive over one WebSocket;
// held keys, the agent toggle, the temperature, the view and restarts go back as JSON.
"use strict";
const ws = new WebSocket(`ws://${location.host}/ws`);
ws.binaryType = "blob";
const $ = (id) => document.getElementById(id);
const held = new Set();
const KEYS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"];
let frameUrl = null;
let agent = false;
let frames = 0;

function send(msg) {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

ws.onmessage = (event) => {
  if (typeof event.data !== "string") {
    const url = URL.createObjectURL(event.data);
    $("frame").src = url;
    if (frameUrl) URL.revokeObjectURL(frameUrl);
    frameUrl = url;
    frames += 1;
    $("frame").dataset.frames = String(frames);
    return;
  }
  const s = JSON.parse(event.data);
  $("score").textContent = s.score.toFixed(1);
  $("steps").textContent = s.steps;
  $("p-done").textContent = s.p_done.toFixed(3);
  $("status").textContent = s.done ? "episode over: Restart" : "";
  $("temperature").dataset.server = String(s.temperature);
  agent = s.agent;
  $("agent").textContent = `Agent drives: ${agent ? "on" : "off"}`;
  $("agent").classList.toggle("on", agent);
  $("dream").classList.toggle("on", s.view === "dream");
  $("real").classList.toggle("on", s.view === "real");
  $("help").textContent = (s.env === "doom"
    ? "Left and right arrows dodge."
    : "Arrows: left and right steer, up is gas, down brakes.")
    + (s.view === "real" ? " Left: the game; right: V's reconstruction of it." : " The dream, decoded by V.");
};
ws.onclose = (event) => { $("status").textContent = `disconnected ${event.reason || ""}`; };

document.addEventListener("keydown", (e) => {
  if (!KEYS.includes(e.key)) return;
  e.preventDefault();
  if (!held.has(e.key)) { held.add(e.key); send({ keys: [...held] }); }
});
document.addEventListener("keyup", (e) => {
  if (!KEYS.includes(e.key)) return;
  held.delete(e.key);
  send({ keys: [...held] });
});
$("agent").onclick = () => send({ agent: !agent });
$("restart").onclick = () => send({ restart: true });
$("dream").onclick = () => send({ view: "dream" });
$("real").onclick = () => send({ view: "real" });
$("temperature").oninput = (e) => {
  const t = parseFloat(e.target.value);
  $("temperature-value").textContent = t.toFixed(2);
  send({ temperature: t });
};
