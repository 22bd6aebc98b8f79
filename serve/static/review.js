// Reviewer page: loads the review queue (/review/api/queue) with the reviewer key and sends
// approve / correct / dismiss decisions (/review/api/decide).
"use strict";
(function () {
  const form = document.getElementById("login");
  const keyInput = document.getElementById("reviewer-key");
  const nameInput = document.getElementById("reviewer");
  const filter = document.getElementById("filter");
  const status = document.getElementById("status");
  const queue = document.getElementById("queue");
  const tpl = document.getElementById("item");
  const REASONS = { risky_rule: "风险规则触发", thumbs_down: "用户点踩", correction: "用户建议更正" };
  const DONE = { approved: "已通过", corrected: "已修改", dismissed: "已驳回" };

  keyInput.value = sessionStorage.getItem("medqa-reviewer-key") || "";
  nameInput.value = localStorage.getItem("medqa-reviewer") || "";

  function headers() {
    const h = { "Content-Type": "application/json" };
    if (keyInput.value) h["Authorization"] = "Bearer " + keyInput.value;
    return h;
  }
  async function errorText(resp) {
    let msg = "HTTP " + resp.status;
    try { const j = await resp.json(); if (j.error && j.error.message) msg += "：" + j.error.message; } catch (e) {}
    return msg;
  }

  function render(it) {
    const el = tpl.content.firstElementChild.cloneNode(true);
    el.dataset.requestId = it.request_id;
    el.dataset.state = it.status;
    el.querySelector(".question").textContent = "问：" + it.question;
    el.querySelector(".answer").textContent = it.answer;
    const why = el.querySelector(".why");
    for (const r of it.reasons) {
      const s = document.createElement("span"); s.className = "rule reason"; s.textContent = REASONS[r] || r; why.appendChild(s);
    }
    for (const r of it.rules) {
      const s = document.createElement("span"); s.className = "rule" + (r.startsWith("risky:") ? " risky" : "");
      s.textContent = r; why.appendChild(s);
    }
    const fb = el.querySelector(".fb");
    let correction = "";
    for (const f of it.feedback) {
      const li = document.createElement("li");
      li.textContent = (f.rating === "up" ? "👍 好评" : "👎 差评") + (f.correction ? " 更正：" + f.correction : "") + (f.comment ? " 说明：" + f.comment : "");
      fb.appendChild(li);
      if (f.correction) correction = f.correction;
    }
    el.dataset.correction = correction;
    el.querySelector(".final").value = it.final_answer || correction || it.answer;
    el.querySelector(".category").value = it.category || "";
    if (it.status !== "open") {
      el.querySelector(".decided").textContent = DONE[it.status] + (it.reviewer ? "（" + it.reviewer + "）" : "");
      for (const b of el.querySelectorAll(".actions button")) b.disabled = true;
    }
    for (const action of ["approve", "correct", "dismiss"]) {
      el.querySelector("." + action).addEventListener("click", () => decide(el, action));
    }
    return el;
  }

  async function decide(el, action) {
    if (!nameInput.value.trim()) { status.textContent = "请先填写审核人。"; nameInput.focus(); return; }
    const body = { request_id: el.dataset.requestId, action, reviewer: nameInput.value.trim() };
    if (action === "correct") body.answer = el.querySelector(".final").value.trim();
    const cat = el.querySelector(".category").value.trim();
    if (cat) body.category = cat;
    const resp = await fetch("/review/api/decide", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!resp.ok) { status.textContent = "提交失败：" + await errorText(resp); return; }
    const j = await resp.json();
    el.dataset.state = j.status;
    el.querySelector(".decided").textContent = DONE[j.status] + "（" + body.reviewer + "）";
    for (const b of el.querySelectorAll(".actions button")) b.disabled = true;
    status.textContent = "已保存：" + DONE[j.status];
  }

  async function load() {
    sessionStorage.setItem("medqa-reviewer-key", keyInput.value);
    localStorage.setItem("medqa-reviewer", nameInput.value);
    status.textContent = "正在加载…";
    queue.dataset.state = "loading";
    const resp = await fetch("/review/api/queue?status=" + encodeURIComponent(filter.value), { headers: headers() });
    queue.textContent = "";
    if (!resp.ok) { status.textContent = "加载失败：" + await errorText(resp); queue.dataset.state = "error"; return; }
    const j = await resp.json();
    for (const it of j.items) queue.appendChild(render(it));
    status.textContent = "共 " + j.items.length + " 条";
    queue.dataset.state = "loaded";
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
})();
