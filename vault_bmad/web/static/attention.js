// vault-bmad dashboard: on every page, what keeps work from running: agents taken out
// (which, why, until when) and LLM servers that do not answer. Text goes in as textContent.
"use strict";

(function () {
  const EVERY_MS = 3000;

  function line(text, detail) {
    const item = document.createElement("li");
    const head = document.createElement("b");
    head.textContent = text;
    item.append(head, document.createTextNode(detail ? ` ${detail}` : ""));
    return item;
  }

  const at = (epoch) => new Date(epoch * 1000).toLocaleTimeString();

  function render(box, health) {
    const items = health.agents_out.map((agent) => line(
      `Agent ${agent.id} is out${agent.until ? `, next try at ${at(agent.until)}` : ""}:`,
      agent.why || agent.state));
    for (const endpoint of health.endpoints) {
      if (endpoint.down_since === null) continue;
      const state = endpoint.dead ? "given up on" : "down";
      items.push(line(`LLM server ${endpoint.url} is ${state} since ${at(endpoint.down_since)}:`,
        endpoint.error || ""));
    }
    box.querySelector("ul").replaceChildren(...items);
    box.hidden = items.length === 0;
  }

  async function tick(box) {
    try {
      const response = await fetch("/api/health", { cache: "no-cache", headers: { Accept: "application/json" } });
      if (response.ok) render(box, await response.json());
    } finally {
      window.setTimeout(() => tick(box), EVERY_MS);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("attention");
    if (box) tick(box);
  });
})();
