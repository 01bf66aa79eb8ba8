// Keeps the pending list current without reloading the page: every few seconds it
// fetches the server-rendered list (escaped there) and swaps it in when it changed.
// A session that ended sends the reviewer back to sign in.
"use strict";
(function () {
  const list = document.getElementById("pending");
  if (!list) return;
  const freshness = document.getElementById("freshness");
  const source = list.dataset.source;
  const signIn = list.dataset.signIn;
  const everyMs = 2000;
  let shown = null;

  function say(text) {
    if (freshness) freshness.textContent = text;
  }

  async function refresh() {
    try {
      const answer = await fetch(source, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Accept": "text/html" },
      });
      if (answer.status === 401 || answer.status === 403) {
        window.location.assign(signIn);
        return;
      }
      if (answer.ok) {
        const html = await answer.text();
        if (html !== shown) {
          list.innerHTML = html;
          shown = html;
        }
        say("Updated " + new Date().toLocaleTimeString());
      } else {
        say("The server answered " + answer.status + "; retrying");
      }
    } catch (error) {
      say("Cannot reach the server; retrying");
    }
    window.setTimeout(refresh, everyMs);
  }

  window.setTimeout(refresh, everyMs);
})();
