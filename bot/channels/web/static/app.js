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
    bubble("me", "", data.photo || null);
    showReplies(data.replies);
  } catch (e) { bubble("notice", "⚠️ " + e.message); }
  $("#photo").value = "";
});

$("#owner-start").addEventListener("click", startSession);

// ---- staff pane ----
const LABELS = {
  claim: "接单 Claim", start: "到场 On site", resolve: "完成 Resolve", hold: "挂起 Hold", resume: "恢复 Resume",
  reject: "退单 Reject", reassign: "转派 Reassign", merge: "合并 Merge", comment: "留言 Comment",
};
const STATUS = {
  new: "待接单 new", assigned: "已接单 assigned", in_progress: "处理中 in progress", on_hold: "挂起 on hold",
  resolved: "已完成 resolved", closed: "已关闭 closed", cancelled: "已撤销 cancelled", rejected: "已退单 rejected",
  reopened: "重新打开 reopened",
};
let staffList = [];

async function loadStaff() {
  staffList = await api("/api/staff/members");
  for (const s of staffList) {
    const opt = document.createElement("option");
    opt.value = s.id; opt.textContent = `${s.name} (${s.trade || s.role})`;
    $("#staff-pick").appendChild(opt);
  }
}

async function act(number, action, duplicateOf) {
  let note = "";
  let assignee_id = null;
  if (action === "reject") { note = prompt("退单原因 Reason for rejecting:"); if (!note) return; }
  if (action === "comment") { note = prompt("给业主的留言 Message to the owner:"); if (!note) return; }
  if (action === "merge") { note = prompt("合并到哪张工单 Merge into ticket:", duplicateOf || ""); if (!note) return; }
  if (action === "hold") { note = prompt("挂起原因 Why on hold (e.g. waiting for parts):") || ""; }
  if (action === "resolve") { note = prompt("处理结果 What was done:") || ""; }
  if (action === "reassign") {
    const names = staffList.map((s) => `${s.id}: ${s.name}`).join("\n");
    assignee_id = Number(prompt("转派给 Reassign to:\n" + names));
    if (!assignee_id) return;
  }
  try {
    await api(`/api/staff/tickets/${number}/action`,
      { staff_id: Number($("#staff-pick").value), action, note, assignee_id });
  } catch (e) { alert(e.message); }
  refreshTickets();
}

function card(t) {
  const div = document.createElement("div");
  div.className = `ticket ${t.urgency}`;
  div.dataset.number = t.number;
  const top = document.createElement("div"); top.className = "top";
  top.innerHTML = `<span class="num"></span><span class="badge ${t.urgency}"></span>` +
    `<span class="badge"></span><span class="badge status"></span>` + (t.overdue ? `<span class="badge overdue">超时 overdue</span>` : "");
  top.children[0].textContent = t.number; top.children[1].textContent = t.urgency;
  top.children[2].textContent = t.category; top.children[3].textContent = STATUS[t.status] || t.status;
  div.appendChild(top);
  const desc = document.createElement("div"); desc.className = "desc"; desc.textContent = t.description;
  div.appendChild(desc);
  const meta = document.createElement("div"); meta.className = "meta";
  meta.textContent = [t.location && `📍 ${t.location}`, t.contact && `👤 ${t.contact}`, t.phone && `☎ ${t.phone}`,
    t.assignee && `🔧 ${t.assignee}`, t.preferred_time && `🕒 ${t.preferred_time}`,
    t.hurry_count ? `催单 ×${t.hurry_count}` : "", t.rating ? `★${t.rating}` : ""].filter(Boolean).join("  ");
  div.appendChild(meta);
  if (t.photos.length) {
    const ph = document.createElement("div"); ph.className = "photos";
    t.photos.forEach((p, n) => {  // from any channel: the server fetches it from there once
      const i = document.createElement("img");
      i.src = p.startsWith("web:") ? "/uploads/" + p.slice(4) : `/api/staff/tickets/${t.number}/photos/${n}`;
      i.alt = "📷"; ph.appendChild(i);
    });
    div.appendChild(ph);
  }
  const acts = document.createElement("div"); acts.className = "acts";
  for (const a of t.actions) {
    const b = document.createElement("button"); b.type = "button"; b.textContent = LABELS[a] || a;
    b.dataset.action = a;
    if (a === "claim" || a === "resolve") b.className = "primary";
    b.onclick = () => act(t.number, a, t.possible_duplicate_of);
    acts.appendChild(b);
  }
  div.appendChild(acts);
  return div;
}

async function refreshTickets() {
  try {
    const data = await api("/api/staff/tickets");
    const box = $("#tickets");
    box.innerHTML = "";
    if (!data.tickets.length) box.innerHTML = '<p class="empty">暂无工单 No tickets yet</p>';
    for (const t of data.tickets) box.appendChild(card(t));
  } catch (e) { /* retried on the next tick */ }
}

async function refreshBindings() {
  try {
    const data = await api("/api/staff/bindings");
    const box = $("#bindings");
    box.hidden = !data.bindings.length;
    box.innerHTML = data.bindings.length ? "<b>待审核的房屋绑定 Bindings to approve</b>" : "";
    for (const b of data.bindings) {
      const row = document.createElement("div"); row.className = "row";
      const label = document.createElement("span");
      label.textContent = `${b.person || "?"} · ${b.estate} ${b.unit} · ☎ ${b.phone}`;
      row.appendChild(label);
      for (const [approve, text] of [[true, "通过 Approve"], [false, "拒绝 Refuse"]]) {
        const btn = document.createElement("button"); btn.type = "button"; btn.textContent = text;
        btn.onclick = async () => { await api(`/api/staff/bindings/${b.id}`, { approve }); refreshBindings(); };
        row.appendChild(btn);
      }
      box.appendChild(row);
    }
  } catch (e) { /* retried on the next tick */ }
}

$("#notice-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const buildings = $("#notice-buildings").value.split(/[,，\s]+/).filter(Boolean);
  try {
    const r = await api("/api/staff/notice", { estate: $("#notice-estate").value.trim(), buildings,
                                              text: $("#notice-text").value.trim() });
    $("#notice-result").textContent = `已发给 ${r.accounts} 个账号 Sent to ${r.accounts}`;
  } catch (e) {
    $("#notice-result").textContent = String(e.message || e);
  }
});

setInterval(refreshTickets, 2000);
setInterval(refreshBindings, 4000);
refreshBindings();
loadOwners(); loadStaff(); refreshTickets(); pollOwner();
