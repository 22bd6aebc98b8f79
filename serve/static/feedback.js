// Chat page feedback: 👍 / 👎 and "suggest a correction" under every finished answer; POST /feedback
// with the answer's request_id and the page's API key. 👎 and corrections go to the reviewers' queue.
"use strict";
(function () {
  const log = document.getElementById("log");
  const keyInput = document.getElementById("api-key");

  async function post(turn, rating, correction, comment) {
    const status = turn.querySelector(".fb-status");
    const headers = { "Content-Type": "application/json" };
    if (keyInput.value) headers["Authorization"] = "Bearer " + keyInput.value;
    const body = { request_id: turn.dataset.requestId, rating };
    if (correction) body.correction = correction;
    if (comment) body.comment = comment;
    status.textContent = "正在提交…";
    let resp;
    try {
      resp = await fetch("/feedback", { method: "POST", headers, body: JSON.stringify(body) });
    } catch (e) {
      status.textContent = "提交失败：" + e;
      return;
    }
    if (!resp.ok) {
      let msg = "提交失败（HTTP " + resp.status + "）";
      try { const j = await resp.json(); if (j.error && j.error.message) msg += "：" + j.error.message; } catch (e) {}
      status.textContent = msg;
      turn.dataset.feedback = "error";
      return;
    }
    const j = await resp.json();
    turn.dataset.feedback = rating;
    turn.querySelector(".fb-form").hidden = true;
    for (const b of turn.querySelectorAll(".feedback button")) b.disabled = true;
    status.textContent = j.queued ? "感谢反馈，已提交人工审核。" : "感谢反馈！";
  }

  function button(cls, text, title) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = cls;
    b.textContent = text;
    b.title = title;
    return b;
  }

  function addBar(turn) {
    const bar = document.createElement("div");
    bar.className = "feedback";
    const up = button("fb-up", "👍 有帮助", "回答有帮助");
    const down = button("fb-down", "👎 有问题", "回答有问题");
    const suggest = button("fb-suggest", "建议更正", "提交您认为正确的回答");
    const status = document.createElement("span");
    status.className = "fb-status";
    const form = document.createElement("div");
    form.className = "fb-form";
    form.hidden = true;
    form.innerHTML = '<textarea class="fb-correction" rows="3" maxlength="4000" placeholder="您认为正确的回答（可选）"></textarea>' +
      '<input class="fb-comment" maxlength="1000" placeholder="补充说明（可选）">';
    const sendBtn = button("fb-send", "提交反馈", "提交 👎 和更正");
    form.appendChild(sendBtn);
    bar.append(up, down, suggest, status, form);
    turn.appendChild(bar);

    up.addEventListener("click", () => post(turn, "up"));
    const open = (focus) => {
      form.hidden = false;
      if (focus) form.querySelector(".fb-correction").focus();
    };
    down.addEventListener("click", () => open(false));
    suggest.addEventListener("click", () => open(true));
    sendBtn.addEventListener("click", () => post(turn, "down",
      form.querySelector(".fb-correction").value.trim(), form.querySelector(".fb-comment").value.trim()));
  }

  new MutationObserver(() => {
    for (const turn of log.querySelectorAll('.turn[data-state="done"]')) {
      if (turn.dataset.requestId && !turn.querySelector(".feedback")) addBar(turn);
    }
  }).observe(log, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"] });
})();
