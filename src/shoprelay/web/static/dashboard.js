// shoprelay's dashboard: swaps in fresh server-rendered panels and sends the actions.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const filter = document.getElementById("letter-filter");
  const flash = document.getElementById("flash");

  function query() {
    const params = new URLSearchParams(new FormData(filter));
    for (const [key, value] of [...params]) if (!value) params.delete(key);
    return params;
  }

  async function fetchText(url) {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) { window.location = "/login"; throw new Error("signed out"); }
    if (!response.ok) throw new Error(response.status + " " + (await response.text()));
    return response.text();
  }

  async function refresh(panel) {
    let url = panel.dataset.refresh;
    if (panel.id === "letters") url += "?" + query();
    const picked = new Set([...panel.querySelectorAll('input[name="pick"]:checked')].map((b) => b.value));
    try {
      panel.innerHTML = await fetchText(url);
      panel.classList.remove("stale");
    } catch (error) {
      panel.classList.add("stale");
      return;
    }
    for (const box of panel.querySelectorAll('input[name="pick"]')) box.checked = picked.has(box.value);
    if (panel.id === "overview") {
      const generated = panel.querySelector("#generated");
      document.title = generated.dataset.title;
      document.getElementById("updated").textContent =
        new Date(Number(generated.dataset.at) * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z";
    }
    if (panel.id === "letters") fillFacets(panel.querySelector("[data-facets]"));
  }

  function fillFacets(holder) {
    if (!holder) return;
    const facets = JSON.parse(holder.dataset.facets);
    for (const name of ["origin", "topic"]) {
      const select = filter.elements[name];
      const chosen = select.value;
      const known = new Set([...select.options].map((o) => o.value));
      for (const value of facets[name] || []) {
        if (!known.has(value)) select.add(new Option(value, value));
      }
      select.value = chosen;
    }
  }

  async function showLetter(id, unmask) {
    const target = document.getElementById("letter-detail");
    target.innerHTML = await fetchText("/fragments/dead-letters/" + id + (unmask ? "?unmask=true" : ""));
    target.scrollIntoView({ block: "nearest" });
  }

  async function act(button) {
    const scope = button.dataset.scope;
    let body = {};
    if (scope === "selected") {
      const ids = [...document.querySelectorAll('#letters input[name="pick"]:checked')].map((b) => Number(b.value));
      if (!ids.length) { say("Select some dead letters first."); return; }
      body = { ids };
    } else if (scope === "one") {
      body = { ids: [Number(button.dataset.ids)] };
    } else if (scope === "matching") {
      body = { filter: Object.fromEntries(query()) };
    }
    if (button.classList.contains("danger") && !window.confirm(button.textContent + ": delete for good?")) return;
    button.disabled = true;
    try {
      const response = await fetch(button.dataset.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      say(response.ok ? button.textContent.trim() + ": " + summary(answer) : "Refused: " + answer.detail, !response.ok);
      if (response.ok && scope === "one") document.getElementById("letter-detail").innerHTML = "";
    } finally {
      button.disabled = false;
      for (const panel of document.querySelectorAll("[data-refresh]")) if (panel.id !== "deliveries" && panel.id !== "reconcile") refresh(panel);
    }
  }

  function summary(answer) {
    return Object.entries(answer).filter(([, n]) => n).map(([key, n]) => n + " " + key.replace(/_/g, " ")).join(", ") || "nothing to do";
  }

  function say(message, bad) {
    flash.textContent = message;
    flash.className = bad ? "bad" : "ok";
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.action) { event.preventDefault(); act(button); }
    else if (button.dataset.letter) { event.preventDefault(); showLetter(button.dataset.letter, button.dataset.unmask); }
  });
  document.addEventListener("change", (event) => {
    if (event.target.id === "pick-all") {
      for (const box of document.querySelectorAll('#letters input[name="pick"]')) box.checked = event.target.checked;
    }
  });
  filter.addEventListener("input", () => refresh(document.getElementById("letters")));
  filter.addEventListener("submit", (event) => event.preventDefault());

  for (const panel of document.querySelectorAll("[data-refresh]")) {
    if (panel.id !== "overview") refresh(panel);
    window.setInterval(() => { if (!document.hidden) refresh(panel); }, Number(panel.dataset.every) * 1000);
  }
})();
