// propdesk staff console. Plain JS, no build step, no external resources. Every text from the server is put into
// the page with textContent (through el()), never as HTML.
"use strict";
const $ = (s, root = document) => root.querySelector(s);
const $$ = (s, root = document) => Array.from(root.querySelectorAll(s));

const T = {
  zh: {
    console: "工作台", phone: "手机号", password: "密码", sign_in: "登录", sign_out: "退出", tickets: "工单",
    owners: "业主与房屋", notices: "通知", alerts: "紧急提醒", all: "全部", mine: "我的", unassigned: "未派",
    overdue: "超时", emergencies: "紧急", apply: "筛选", export: "导出", assign: "派单", close: "关闭",
    more: "更多", bindings: "待审核的房屋绑定", roster: "业主名册", search: "搜索", import: "导入",
    import_owners: "业主名册", import_bills: "账单", upload: "上传", estate: "小区", buildings: "楼栋（不选=全部）",
    notice_text: "通知内容", preview: "预览", send: "发送", skip: "跳到内容",
    search_ph: "编号、内容、房号、业主姓名或电话", roster_search_ph: "姓名、电话或房号",
    any: "全部", any_estate: "全部小区", any_building: "全部楼栋", any_status: "全部状态", open: "未完成",
    any_kind: "全部类型", any_category: "全部分类", any_urgency: "全部紧急度", any_assignee: "全部处理人",
    me: "我", nobody: "未派", any_channel: "全部渠道", any_sla: "全部时限", due_soon: "一小时内到期",
    met: "按时完成", newest: "最新", oldest: "最早", due: "最近到期", selected: "已选 {n} 张",
    wrong: "手机号或密码不对", locked: "登录失败次数过多，已锁定 {m} 分钟", no_tickets: "没有符合条件的工单",
    reply: "回复业主", reply_ph: "发给业主的消息（通过业主自己的渠道）", note: "内部备注",
    note_ph: "仅员工可见，不发给业主", reclassify: "修改分类", save: "保存", timeline: "时间线",
    owner: "业主", units: "绑定房屋", earlier: "以往工单", photos: "照片", reason: "原因", done_note: "处理结果",
    assign_to: "派给…", location: "位置", anonymous: "匿名", approve: "通过", refuse: "拒绝",
    no_bindings: "没有待审核的绑定", imported: "已导入 {rows} 行（新增 {created}，更新 {updated}）",
    not_imported: "未导入，没有任何改动。问题：", row: "行", preview_result: "将发给 {owners} 位业主，{accounts} 个账号：{channels}",
    sent: "已发给 {n} 个账号", new_emergency: "新的紧急工单 {n}：{s}", merge_into: "合并到工单编号",
    deadline_claim: "接单时限", deadline_arrive: "到场时限", deadline_resolve: "完成时限",
    state_met: "按时", state_missed: "超时", state_pending: "未到", resolve_photo: "完成照片（可选）",
  },
  en: {
    console: "Staff console", phone: "Phone", password: "Password", sign_in: "Sign in", sign_out: "Sign out",
    tickets: "Tickets", owners: "Owners & homes", notices: "Notices", alerts: "Emergency alerts", all: "All",
    mine: "Mine", unassigned: "Unassigned", overdue: "Overdue", emergencies: "Emergencies", apply: "Filter",
    export: "Export", assign: "Assign", close: "Close", more: "More", bindings: "Bindings to approve",
    roster: "Roster", search: "Search", import: "Import", import_owners: "Owners", import_bills: "Bills",
    upload: "Upload", estate: "Estate", buildings: "Buildings (none = all)", notice_text: "Text",
    preview: "Preview", send: "Send", skip: "Skip to content",
    search_ph: "Number, text, home, owner name or phone", roster_search_ph: "Name, phone or home",
    any: "Any", any_estate: "All estates", any_building: "All buildings", any_status: "Any status", open: "Open",
    any_kind: "Any kind", any_category: "Any category", any_urgency: "Any urgency", any_assignee: "Anyone",
    me: "Me", nobody: "Unassigned", any_channel: "Any channel", any_sla: "Any deadline",
    due_soon: "Due within an hour", met: "Met", newest: "Newest", oldest: "Oldest", due: "Due first",
    selected: "{n} selected", wrong: "Wrong phone or password",
    locked: "Too many failed sign-ins: locked for {m} min", no_tickets: "No tickets match",
    reply: "Reply to the owner", reply_ph: "Message to the owner (in their own channel)", note: "Internal note",
    note_ph: "Staff only, never sent to the owner", reclassify: "Reclassify", save: "Save", timeline: "Timeline",
    owner: "Owner", units: "Homes", earlier: "Earlier tickets", photos: "Photos", reason: "Reason",
    done_note: "What was done", assign_to: "Assign to…", location: "Location", anonymous: "anonymous",
    approve: "Approve", refuse: "Refuse", no_bindings: "No bindings waiting",
    imported: "Imported {rows} rows ({created} new, {updated} updated)",
    not_imported: "Not imported, nothing changed. Problems:", row: "Row",
    preview_result: "Goes to {owners} owners, {accounts} accounts: {channels}", sent: "Sent to {n} accounts",
    new_emergency: "New emergency {n}: {s}", merge_into: "Merge into ticket number",
    deadline_claim: "Claim by", deadline_arrive: "On site by", deadline_resolve: "Resolve by",
    state_met: "met", state_missed: "missed", state_pending: "pending", resolve_photo: "Photo of the result (optional)",
  },
};
const LABELS = {
  zh: {
    status: { new: "待接单", assigned: "已接单", in_progress: "处理中", on_hold: "挂起", resolved: "已完成", closed: "已关闭",
      cancelled: "已撤销", rejected: "已退单", reopened: "重新打开" },
    urgency: { emergency: "紧急", high: "高", normal: "普通", low: "低" },
    kind: { repair: "报修", complaint: "投诉" },
    action: { claim: "接单", start: "到场", hold: "挂起", resume: "恢复", resolve: "完成", reject: "退单", reassign: "转派",
      merge: "合并", comment: "留言", assign: "派单", reopen: "重开", create: "新建", note: "备注", reclassify: "改分类",
      close: "关闭", hurry: "催单", rate: "评价" },
    channel: { web: "网页", telegram: "Telegram", wechat: "微信" },
  },
  en: {
    status: { new: "new", assigned: "assigned", in_progress: "in progress", on_hold: "on hold", resolved: "resolved",
      closed: "closed", cancelled: "cancelled", rejected: "rejected", reopened: "reopened" },
    urgency: { emergency: "emergency", high: "high", normal: "normal", low: "low" },
    kind: { repair: "repair", complaint: "complaint" },
    action: { claim: "Claim", start: "On site", hold: "Hold", resume: "Resume", resolve: "Resolve", reject: "Reject",
      reassign: "Transfer", merge: "Merge", comment: "Reply", assign: "Assign", reopen: "Reopen", create: "created",
      note: "note", reclassify: "reclassified", close: "Close", hurry: "hurried", rate: "rated" },
    channel: { web: "web", telegram: "Telegram", wechat: "WeChat" },
  },
};
const state = {
  lang: localStorage.getItem("propdesk.lang") || (navigator.language.startsWith("zh") ? "zh" : "en"),
  csrf: "", meta: null, view: "", cursor: null, current: null, selected: new Set(), source: null,
};

function t(key, vars = {}) {
  let s = (T[state.lang] && T[state.lang][key]) || T.en[key] || key;
  for (const [k, v] of Object.entries(vars)) s = s.replace("{" + k + "}", String(v));
  return s;
}
function lab(group, value) { return (LABELS[state.lang][group] || {})[value] || value; }

// el("div", {class: "x", onclick: fn}, "text", child…): children that are strings become text nodes.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false)
    node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  return node;
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}

async function api(path, { method = "GET", body, form } = {}) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = state.csrf;
  if (form) opts.body = form;
  else if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({ error: res.statusText }));
  if (res.status === 401 && path !== "/api/console/login") { showLogin(); }
  if (!res.ok) { const e = new Error(data.error || res.statusText); e.status = res.status; e.data = data; throw e; }
  return data;
}

// ---- language ----
function applyLang() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  for (const n of $$("[data-t]")) n.textContent = t(n.dataset.t);
  for (const n of $$("[data-tp]")) n.placeholder = t(n.dataset.tp + "_ph");
  for (const b of $$(".lang-toggle")) b.textContent = state.lang === "zh" ? "English" : "中文";
  if (state.meta) { fillFilters(); fillNotice(); loadList(); if (state.current) openTicket(state.current); }
}
for (const b of $$(".lang-toggle")) b.addEventListener("click", () => {
  state.lang = state.lang === "zh" ? "en" : "zh"; localStorage.setItem("propdesk.lang", state.lang); applyLang();
});

// ---- sign-in ----
function showLogin() {
  $("#app").hidden = true; $("#login").hidden = false;
  if (state.source) { state.source.close(); state.source = null; }
  $("#login-phone").focus();
}
$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#login-error").textContent = "";
  try {
    const r = await api("/api/console/login", { method: "POST",
      body: { phone: $("#login-phone").value.trim(), password: $("#login-password").value } });
    state.csrf = r.csrf; $("#login-password").value = "";
    await start();
  } catch (e) {
    $("#login-error").textContent = e.status === 429 ? t("locked", { m: Math.ceil((e.data.retry_after || 60) / 60) })
      : e.status === 401 ? t("wrong") : e.message;
  }
});
$("#logout").addEventListener("click", async () => {
  try { await api("/api/console/logout", { method: "POST", body: {} }); } catch (e) { /* signed out anyway */ }
  state.csrf = ""; showLogin();
});

async function start() {
  let meta;
  try { meta = await api("/api/console/me"); } catch (e) { showLogin(); return; }
  state.meta = meta; state.csrf = meta.csrf;
  $("#login").hidden = true; $("#app").hidden = false;
  $("#me").textContent = `${meta.me.name} · ${meta.me.role}`;
  const can = (p) => meta.permissions.includes(p);
  $('[data-tab="owners"]').hidden = !can("bindings");
  $('[data-tab="notices"]').hidden = !can("notices");
  fillFilters(); fillNotice(); showTab("tickets"); loadList(); listen();
}

// ---- tabs ----
function showTab(name) {
  for (const b of $$("header nav button")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const s of $$(".tab")) s.hidden = s.id !== "tab-" + name;
  if (name === "owners") { loadBindings(); loadRoster(); }
}
for (const b of $$("header nav button")) b.addEventListener("click", () => showTab(b.dataset.tab));

// ---- filters and list ----
function options(select, first, pairs, keep = true) {
  const old = select.value;
  clear(select).appendChild(el("option", { value: "" }, first));
  for (const [v, text] of pairs) select.appendChild(el("option", { value: v }, text));
  if (keep) select.value = old;
}
function fillFilters() {
  const m = state.meta;
  options($("#f-estate"), t("any_estate"), m.estates.map((e) => [e.code, e.name]));
  const estate = m.estates.find((e) => e.code === $("#f-estate").value);
  const buildings = estate ? estate.buildings : [...new Set(m.estates.flatMap((e) => e.buildings))];
  options($("#f-building"), t("any_building"), buildings.map((b) => [b, b]));
  options($("#f-status"), t("any_status"), [["open", t("open")], ...m.statuses.map((s) => [s, lab("status", s)])]);
  options($("#f-kind"), t("any_kind"), m.kinds.map((k) => [k, lab("kind", k)]));
  const cats = [...m.categories.repair, ...m.categories.complaint];
  options($("#f-category"), t("any_category"), cats.map((c) => [c, c]));
  options($("#f-urgency"), t("any_urgency"), m.urgencies.map((u) => [u, lab("urgency", u)]));
  options($("#f-assignee"), t("any_assignee"), [["me", t("me")], ["none", t("nobody")],
    ...m.staff.map((s) => [String(s.id), s.name])]);
  options($("#f-channel"), t("any_channel"), m.channels.map((c) => [c, lab("channel", c)]));
  options($("#f-sla"), t("any_sla"), [["overdue", t("overdue")], ["due_soon", t("due_soon")], ["met", t("met")]]);
  const sort = $("#f-sort").value || "newest";
  clear($("#f-sort"));
  for (const s of ["newest", "oldest", "due"]) $("#f-sort").appendChild(el("option", { value: s }, t(s)));
  $("#f-sort").value = sort;
  options($("#bulk-assignee"), t("assign_to"), m.staff.map((s) => [String(s.id), `${s.name} (${s.trade || s.role})`]));
  $("#bulk").hidden = !m.permissions.includes("bulk") || !state.selected.size;
}
$("#f-estate").addEventListener("change", () => { $("#f-building").value = ""; fillFilters(); });

function query() {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData($("#filters"))) if (v) p.append(k, v);
  if (state.view) p.set("view", state.view);
  return p;
}
async function loadList(append = false) {
  const p = query();
  if (append && state.cursor) p.set("cursor", state.cursor);
  $("#export").href = "/api/console/export.csv?" + query().toString();
  let data;
  try { data = await api("/api/console/tickets?" + p.toString()); } catch (e) { return; }
  const list = $("#list");
  if (!append) { clear(list); }
  for (const tk of data.tickets) list.appendChild(row(tk));
  if (!list.children.length) list.appendChild(el("li", { class: "empty" }, t("no_tickets")));
  state.cursor = data.next; $("#more").hidden = !data.next;
}
function row(tk) {
  const cls = [tk.urgency, tk.overdue ? "overdue" : "", state.current === tk.number ? "current" : ""].join(" ");
  const canBulk = state.meta.permissions.includes("bulk");
  const box = canBulk ? el("input", { type: "checkbox", "aria-label": tk.number, checked: state.selected.has(tk.number),
    onclick: (ev) => ev.stopPropagation(),
    onchange: (ev) => { ev.target.checked ? state.selected.add(tk.number) : state.selected.delete(tk.number); bulkBar(); } })
    : el("span");
  const li = el("li", { class: cls, tabindex: "0", dataset: { number: tk.number }, onclick: () => openTicket(tk.number),
    onkeydown: (ev) => { if (ev.key === "Enter") openTicket(tk.number); } },
    box,
    el("div", {},
      el("div", { class: "top" }, el("span", { class: "num" }, tk.number),
        el("span", { class: "badge " + tk.urgency }, lab("urgency", tk.urgency)),
        el("span", { class: "badge status" }, lab("status", tk.status)),
        el("span", { class: "badge" }, tk.category),
        tk.overdue ? el("span", { class: "badge overdue" }, t("overdue")) : null,
        tk.due_soon ? el("span", { class: "badge due_soon" }, t("due_soon")) : null),
      el("div", { class: "sum" }, tk.subject || tk.summary),
      el("div", { class: "meta" }, [tk.estate, tk.unit || tk.location, tk.owner && "👤 " + tk.owner,
        tk.assignee && "🔧 " + tk.assignee, lab("channel", tk.channel), when(tk.created_at)].filter(Boolean).join(" · "))));
  return li;
}
function bulkBar() {
  $("#bulk").hidden = !state.selected.size;
  $("#bulk-count").textContent = t("selected", { n: state.selected.size });
}
async function bulk(action) {
  const body = { numbers: [...state.selected], action };
  if (action === "assign") { body.assignee_id = Number($("#bulk-assignee").value); if (!body.assignee_id) return; }
  try { await api("/api/console/bulk", { method: "POST", body }); } catch (e) { flash(e.message); }
  state.selected.clear(); bulkBar(); loadList();
}
$("#bulk-assign").addEventListener("click", () => bulk("assign"));
$("#bulk-close").addEventListener("click", () => bulk("close"));
$("#filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadList(); });
for (const s of $$("#filters select")) s.addEventListener("change", () => loadList());
$("#more").addEventListener("click", () => loadList(true));
for (const b of $$(".views button")) b.addEventListener("click", () => {
  state.view = b.dataset.view;
  for (const x of $$(".views button")) x.classList.toggle("on", x === b);
  loadList();
});

// ---- a ticket ----
async function openTicket(number) {
  let tk;
  try { tk = await api("/api/console/tickets/" + encodeURIComponent(number)); } catch (e) { flash(e.message); return; }
  state.current = number;
  for (const li of $$("#list li")) li.classList.toggle("current", li.dataset.number === number);
  const d = clear($("#detail"));
  d.hidden = false; d.dataset.number = number;
  d.appendChild(el("h2", {}, el("span", { class: "num" }, tk.number),
    el("span", { class: "badge " + tk.urgency }, lab("urgency", tk.urgency)),
    el("span", { class: "badge status" }, lab("status", tk.status)),
    el("span", { class: "badge" }, `${lab("kind", tk.kind)} · ${tk.category}`),
    tk.overdue ? el("span", { class: "badge overdue" }, t("overdue")) : null,
    el("button", { type: "button", class: "link", "aria-label": "close", onclick: () => { d.hidden = true; state.current = null; } }, "✕")));
  if (tk.subject) d.appendChild(el("p", { class: "desc" }, el("b", {}, tk.subject)));
  d.appendChild(el("p", { class: "desc" }, tk.description));
  d.appendChild(el("p", { class: "meta" }, [tk.estate, tk.location && "📍 " + tk.location,
    tk.assignee && "🔧 " + tk.assignee, tk.preferred_time && "🕒 " + tk.preferred_time,
    lab("channel", tk.channel), tk.hurry_count ? `催单 ×${tk.hurry_count}` : "", tk.rating ? `★${tk.rating}` : ""]
    .filter(Boolean).join(" · ")));
  if (tk.photo_count) {
    d.appendChild(el("section", {}, el("h3", {}, t("photos")), el("div", { class: "photos" },
      tk.photos.map((i) => el("img", { src: `/api/console/tickets/${tk.number}/photos/${i}`, alt: `📷 ${i + 1}` })))));
  }
  if (tk.owner) {
    d.appendChild(el("section", {}, el("h3", {}, t("owner")),
      el("p", { class: "meta" }, [tk.owner.name, tk.owner.phone && "☎ " + tk.owner.phone].filter(Boolean).join(" · ")),
      tk.owner.units.length ? el("p", { class: "meta" }, t("units") + ": " + tk.owner.units.join(", ")) : null,
      tk.owner.earlier.length ? el("p", { class: "meta" }, t("earlier") + ": ",
        tk.owner.earlier.map((e) => el("button", { type: "button", class: "link", onclick: () => openTicket(e.number) },
          `${e.number} (${lab("status", e.status)})`))) : null));
  }
  // actions
  const acts = el("div", { class: "acts" });
  for (const a of tk.actions.filter((a) => a !== "comment")) {
    acts.appendChild(el("button", { type: "button", dataset: { action: a },
      class: a === "claim" || a === "resolve" ? "primary" : a === "reject" ? "danger" : "",
      onclick: () => act(tk, a) }, lab("action", a)));
  }
  if (tk.console_actions.includes("reopen")) acts.appendChild(el("button", { type: "button", dataset: { action: "reopen" }, onclick: () => act(tk, "reopen") }, lab("action", "reopen")));
  const sec = el("section", {}, acts);
  if (tk.console_actions.includes("assign")) {
    const sel = el("select", { "aria-label": t("assign_to"), id: "assign-to" }, el("option", { value: "" }, t("assign_to")),
      state.meta.staff.filter((s) => s.id !== tk.assignee_id).map((s) => el("option", { value: s.id }, `${s.name} (${s.trade || s.role})`)));
    sec.appendChild(el("form", { id: "assign-form", onsubmit: (ev) => { ev.preventDefault(); if (sel.value) send(tk, { action: "assign", assignee_id: Number(sel.value) }); } },
      sel, el("button", { type: "submit" }, lab("action", "assign"))));
  }
  if (tk.actions.includes("resolve")) {
    const file = el("input", { type: "file", accept: "image/*", id: "resolve-photo", "aria-label": t("resolve_photo") });
    const note = el("input", { type: "text", id: "resolve-note", maxlength: "1000", placeholder: t("done_note") });
    sec.appendChild(el("form", { id: "resolve-form", onsubmit: (ev) => {
      ev.preventDefault();
      const fd = new FormData(); fd.append("action", "resolve"); fd.append("note", note.value);
      if (file.files[0]) fd.append("photo", file.files[0]);
      sendForm(tk, fd);
    } }, note, file, el("button", { type: "submit", class: "primary" }, lab("action", "resolve") + " 📷")));
  }
  d.appendChild(sec);
  if (tk.actions.includes("comment")) {
    const txt = el("textarea", { id: "reply-text", maxlength: "1000", rows: "2", placeholder: t("reply_ph"), "aria-label": t("reply") });
    d.appendChild(el("section", {}, el("h3", {}, t("reply")), el("form", { id: "reply-form",
      onsubmit: (ev) => { ev.preventDefault(); if (txt.value.trim()) send(tk, { action: "comment", note: txt.value.trim() }); } },
      txt, el("button", { type: "submit", class: "primary" }, t("send")))));
  }
  if (tk.console_actions.includes("note")) {
    const txt = el("textarea", { id: "note-text", maxlength: "2000", rows: "2", placeholder: t("note_ph"), "aria-label": t("note") });
    d.appendChild(el("section", {}, el("h3", {}, t("note")), el("form", { id: "note-form",
      onsubmit: (ev) => { ev.preventDefault(); if (txt.value.trim()) send(tk, { action: "note", note: txt.value.trim() }); } },
      txt, el("button", { type: "submit" }, t("save")))));
  }
  if (tk.console_actions.includes("reclassify")) {
    const m = state.meta;
    const kind = el("select", { id: "rc-kind", "aria-label": "kind" }, m.kinds.map((k) => el("option", { value: k }, lab("kind", k))));
    const cat = el("select", { id: "rc-category", "aria-label": "category" });
    const urg = el("select", { id: "rc-urgency", "aria-label": "urgency" }, m.urgencies.map((u) => el("option", { value: u }, lab("urgency", u))));
    const fillCats = () => { clear(cat); for (const c of m.categories[kind.value]) cat.appendChild(el("option", { value: c }, c)); };
    kind.value = tk.kind; fillCats(); cat.value = tk.category; urg.value = tk.urgency;
    kind.addEventListener("change", fillCats);
    d.appendChild(el("section", {}, el("h3", {}, t("reclassify")), el("form", { id: "reclassify-form",
      onsubmit: (ev) => { ev.preventDefault(); send(tk, { action: "reclassify", kind: kind.value, category: cat.value, urgency: urg.value }); } },
      kind, cat, urg, el("button", { type: "submit" }, t("save")))));
  }
  const tl = el("ol", { class: "timeline" });
  for (const e of tk.timeline) {
    const label = e.type === "deadline" ? `${t("deadline_" + e.action)} · ${t("state_" + e.state)}` : lab("action", e.action);
    const cls = [e.type, e.direction || "", e.state || ""].join(" ");
    tl.appendChild(el("li", { class: cls }, el("time", {}, when(e.at)), el("b", {}, label), e.who ? ` · ${e.who}` : "",
      e.note ? el("div", { class: "tl-note" }, e.note) : null));
  }
  d.appendChild(el("section", {}, el("h3", {}, t("timeline")), tl));
}
async function act(tk, action) {
  let note = "";
  if (action === "reject" || action === "reopen") { note = prompt(t("reason")) || ""; if (!note) return; }
  if (action === "hold") { note = prompt(t("reason")) || ""; }
  if (action === "merge") { note = prompt(t("merge_into"), tk.possible_duplicate_of || "") || ""; if (!note) return; }
  if (action === "reassign") { const sel = $("#assign-to"); if (sel) { sel.focus(); return; } }
  await send(tk, { action, note });
}
async function send(tk, body) {
  try { await api(`/api/console/tickets/${tk.number}/action`, { method: "POST", body }); }
  catch (e) { flash(e.message); }
  await openTicket(tk.number); loadList();
}
async function sendForm(tk, fd) {
  try { await api(`/api/console/tickets/${tk.number}/action`, { method: "POST", form: fd }); }
  catch (e) { flash(e.message); }
  await openTicket(tk.number); loadList();
}
function flash(text) {
  const a = $("#alert"); a.textContent = text; a.hidden = false;
  clearTimeout(flash.timer); flash.timer = setTimeout(() => { a.hidden = true; }, 6000);
}

// ---- live updates (Server-Sent Events) ----
let refreshTimer = null;
function listen() {
  if (state.source) state.source.close();
  state.source = new EventSource("/api/console/events");
  state.source.addEventListener("ticket", (ev) => {
    const c = JSON.parse(ev.data);
    if (c.action === "create" && c.urgency === "emergency") alarm(c);
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => { loadList(); if (state.current === c.number) openTicket(c.number); }, 300);
  });
}
function alarm(c) {
  flash(t("new_emergency", { n: c.number, s: lab("status", c.status) }));
  if (!$("#sound").checked) return;
  try {
    const ctx = new AudioContext(); const o = ctx.createOscillator(); o.frequency.value = 880;
    o.connect(ctx.destination); o.start(); o.stop(ctx.currentTime + 0.4);
  } catch (e) { /* no audio */ }
  if ("Notification" in window && Notification.permission === "granted") new Notification("propdesk", { body: c.number });
}
$("#sound").checked = localStorage.getItem("propdesk.sound") === "1";
$("#sound").addEventListener("change", () => {
  localStorage.setItem("propdesk.sound", $("#sound").checked ? "1" : "0");
  if ($("#sound").checked && "Notification" in window && Notification.permission === "default") Notification.requestPermission();
});

// ---- owners and homes ----
async function loadBindings() {
  const ul = clear($("#bindings"));
  let data; try { data = await api("/api/console/bindings"); } catch (e) { return; }
  if (!data.bindings.length) ul.appendChild(el("li", { class: "empty" }, t("no_bindings")));
  for (const b of data.bindings) {
    const decide = async (approve) => {
      try { await api(`/api/console/bindings/${b.id}`, { method: "POST", body: { approve } }); } catch (e) { flash(e.message); }
      loadBindings();
    };
    ul.appendChild(el("li", { dataset: { binding: b.id } }, el("span", {}, `${b.person || "?"} · ${b.estate} ${b.unit} · ☎ ${b.phone}`),
      el("button", { type: "button", class: "primary", dataset: { approve: "1" }, onclick: () => decide(true) }, t("approve")),
      el("button", { type: "button", class: "danger", onclick: () => decide(false) }, t("refuse"))));
  }
}
async function loadRoster() {
  const ul = clear($("#roster"));
  let data; try { data = await api("/api/console/roster?q=" + encodeURIComponent($("#roster-q").value)); } catch (e) { return; }
  for (const o of data.owners) ul.appendChild(el("li", {}, el("span", {}, `${o.name} · ${o.estate} ${o.unit} · ${o.role} · ☎ ${o.phone}`)));
}
$("#roster-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadRoster(); });
$("#import-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = clear($("#import-result"));
  const fd = new FormData(); fd.append("file", $("#import-file").files[0]);
  try {
    const r = await api("/api/console/import/" + $("#import-what").value, { method: "POST", form: fd });
    out.appendChild(el("p", { role: "status" }, t("imported", r)));
  } catch (e) {
    if (!e.data || !e.data.errors) { out.appendChild(el("p", { class: "error" }, e.message)); return; }
    out.appendChild(el("p", { class: "error" }, t("not_imported")));
    out.appendChild(el("table", { class: "errors" }, e.data.errors.map(([n, m]) => el("tr", {}, el("td", {}, `${t("row")} ${n}`), el("td", {}, m)))));
  }
});

// ---- notices ----
function fillNotice() {
  const sel = $("#n-estate"); const old = sel.value; clear(sel);
  for (const e of state.meta.estates) sel.appendChild(el("option", { value: e.code }, e.name));
  if (old) sel.value = old;
  fillBuildings();
}
function fillBuildings() {
  const estate = state.meta.estates.find((e) => e.code === $("#n-estate").value);
  const box = clear($("#n-buildings"));
  for (const b of estate ? estate.buildings : []) box.appendChild(el("label", {}, el("input", { type: "checkbox", value: b }), ` ${b}`));
}
$("#n-estate").addEventListener("change", fillBuildings);
function noticeBody() {
  return { estate: $("#n-estate").value, buildings: $$("#n-buildings input:checked").map((i) => i.value), text: $("#n-text").value.trim() };
}
$("#n-preview").addEventListener("click", async () => {
  try {
    const r = await api("/api/console/notices/preview", { method: "POST", body: noticeBody() });
    $("#n-result").textContent = t("preview_result", { owners: r.owners, accounts: r.accounts,
      channels: Object.entries(r.channels).map(([c, n]) => `${lab("channel", c)} ${n}`).join(", ") || "-" });
  } catch (e) { $("#n-result").textContent = e.message; }
});
$("#notice-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const r = await api("/api/console/notices", { method: "POST", body: noticeBody() });
    $("#n-result").textContent = t("sent", { n: r.accounts });
  } catch (e) { $("#n-result").textContent = e.message; }
});

applyLang();
start();
