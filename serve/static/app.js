// Chat page: streams answers from /v1/chat/completions (OpenAI SSE) and shows the safety result.
"use strict";
(function () {
  const form = document.getElementById("ask");
  const question = document.getElementById("question");
  const keyInput = document.getElementById("api-key");
  const send = document.getElementById("send");
  const status = document.getElementById("status");
  const log = document.getElementById("log");
  const tpl = document.getElementById("turn");

  keyInput.value = localStorage.getItem("medqa-api-key") || "";
  keyInput.addEventListener("change", () => localStorage.setItem("medqa-api-key", keyInput.value));

  const RULE_NAMES = {
    reminder_added: "已附就医提醒", injection: "指令注入已拦截", out_of_scope: "超出服务范围",
  };
  function ruleLabel(rule) {
    if (rule.startsWith("emergency:")) return "急症识别：" + rule.slice(10);
    if (rule.startsWith("risky:")) return "风险建议已处理：" + rule.slice(6);
    return RULE_NAMES[rule] || rule;
  }

  function showMeta(turn, medqa) {
    const meta = turn.querySelector(".meta");
    meta.textContent = "";
    const rules = (medqa.safety && medqa.safety.rules) || [];
    turn.dataset.rules = rules.join(",");
    turn.dataset.requestId = medqa.request_id || "";   // for 👍/👎 feedback (feedback.js)
    turn.dataset.action = (medqa.safety && medqa.safety.action) || "";
    for (const r of rules) {
      const span = document.createElement("span");
      span.className = "rule" + (r.startsWith("emergency:") ? " emergency" : "");
      span.textContent = ruleLabel(r);
      meta.appendChild(span);
    }
    const info = document.createElement("span");
    info.textContent = (medqa.cached ? "缓存命中 · " : "") + "用时 " + Math.round(medqa.latency_ms) + " ms";
    meta.appendChild(info);
  }

  function fail(turn, message) {
    turn.classList.add("error", "done");
    turn.dataset.state = "error";
    turn.querySelector(".answer").textContent = message;
  }

  async function ask(text) {
    const turn = tpl.content.firstElementChild.cloneNode(true);
    turn.querySelector(".q").textContent = text;
    turn.dataset.state = "streaming";
    log.appendChild(turn);
    const answer = turn.querySelector(".answer");
    const headers = { "Content-Type": "application/json" };
    if (keyInput.value) headers["Authorization"] = "Bearer " + keyInput.value;
    let resp;
    try {
      resp = await fetch("/v1/chat/completions", {
        method: "POST", headers,
        body: JSON.stringify({ model: "medqa", stream: true, messages: [{ role: "user", content: text }] }),
      });
    } catch (e) {
      return fail(turn, "无法连接服务器：" + e);
    }
    if (!resp.ok) {
      let msg = "请求失败（HTTP " + resp.status + "）";
      try { const j = await resp.json(); if (j.error && j.error.message) msg += "：" + j.error.message; } catch (e) {}
      if (resp.status === 401) msg += "。请在下方填写 API Key。";
      return fail(turn, msg);
    }
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (!data || data === "[DONE]") continue;
        let obj;
        try { obj = JSON.parse(data); } catch (e) { continue; }
        if (obj.error) return fail(turn, "生成失败：" + (obj.error.message || "unknown error"));
        const choice = (obj.choices || [])[0] || {};
        if (choice.delta && choice.delta.content) {
          answer.textContent += choice.delta.content;
          log.scrollTop = log.scrollHeight;
        }
        if (obj.medqa) {
          // the safety post-check withdrew what was streamed (an echo, a recited prompt, personal data):
          // show only the checked answer
          if (typeof obj.medqa.answer === "string") answer.textContent = obj.medqa.answer;
          showMeta(turn, obj.medqa);
        }
      }
    }
    turn.classList.add("done");
    turn.dataset.state = "done";
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = question.value.trim();
    if (!text) { status.textContent = "请输入问题。"; return; }
    send.disabled = true;
    status.textContent = "正在生成回答…";
    question.value = "";
    try { await ask(text); } finally {
      send.disabled = false;
      status.textContent = "";
      question.focus();
    }
  });
  question.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
  });
})();
