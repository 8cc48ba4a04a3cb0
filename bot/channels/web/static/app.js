// propdesk local web chat: the owner side talks to the same flows as WeChat and Telegram; the staff side
// works the tickets. Plain JS, no build step.
"use strict";
const $ = (sel) => document.querySelector(sel);
const state = { user: null, after: 0, staffId: null };

// One owner message at a time, in the order the owner sent them.
let sendQueue = Promise.resolve();
function queued(fn) {
  const next = sendQueue.then(fn, fn);
  sendQueue = next.catch(() => {});
  return next;
}

async function api(path, body) {
  const opts = body instanceof FormData ? { method: "POST", body }
    : body !== undefined ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }
    : {};
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

function bubble(cls, text, img) {
  const div = document.createElement("div");
  div.className = "msg " + cls;
  if (img) { const i = document.createElement("img"); i.src = img; div.appendChild(i); }
  if (text) div.appendChild(document.createTextNode(text));
  $("#messages").appendChild(div);
  $("#messages").scrollTop = $("#messages").scrollHeight;
  return div;
}

function showReplies(replies, cls = "bot") {
  for (const r of replies) {
    bubble(cls, r.text);
    if (r.choices && r.choices.length) {
      const row = document.createElement("div");
      row.className = "choices";
      for (const c of r.choices) {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = c.label; b.dataset.choice = c.id;
        b.onclick = () => { row.classList.add("used"); choose(c.id, c.label); };
        row.appendChild(b);
      }
      $("#messages").appendChild(row);
    }
  }
  $("#messages").scrollTop = $("#messages").scrollHeight;
}

async function choose(id, label) {
  bubble("me", label);
  showReplies((await queued(() => api("/api/web/send", { user: state.user, choice: id }))).replies);
}

async function startSession() {
  const pick = $("#owner-pick").value;
  const body = pick ? { person_id: Number(pick) } : { name: "访客 Guest" };
  const data = await api("/api/web/session", body);
  state.user = data.user; state.after = 0;
  $("#messages").innerHTML = "";
  bubble("notice", `${data.name}`);
  showReplies(data.replies);
  $("#text").disabled = false; $("#send").disabled = false; $("#text").focus();
}

async function loadOwners() {
  const owners = await api("/api/web/owners");
  for (const o of owners) {
    const opt = document.createElement("option");
    opt.value = o.person_id; opt.textContent = `${o.name} · ${o.estate} ${o.unit}`;
    $("#owner-pick").appendChild(opt);
  }
}

async function pollOwner() {
  if (state.user) {
    try {
      const data = await fetch(`/api/web/poll?user=${state.user}&after=${state.after}`).then((r) => r.json());
      for (const m of data.messages || []) {
        state.after = Math.max(state.after, m.id);
        showReplies([m], "notice");
      }
    } catch (e) { /* the next poll retries */ }
  }
  setTimeout(pollOwner, 1500);
}

$("#composer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("#text").value.trim();
  if (!text || !state.user) return;
  $("#text").value = "";
  bubble("me", text);
  try { showReplies((await queued(() => api("/api/web/send", { user: state.user, text }))).replies); }
  catch (e) { bubble("notice", "⚠️ " + e.message); }
});

$("#photo").addEventListener("change", async () => {
  const file = $("#photo").files[0];
  if (!file || !state.user) return;
  const fd = new FormData(); fd.append("user", state.user); fd.append("file", file);
  try {
    const data = await queued(() => api("/api/web/photo", fd));
    if (data.photo) bubble("me", "", data.photo);  // a file that is not a photo gets the bot's answer only
    showReplies(data.replies);
  } catch (e) { bubble("notice", "⚠️ " + e.message); }
  $("#photo").value = "";
});

$("#owner-start").addEventListener("click", startSession);

loadOwners(); pollOwner();
