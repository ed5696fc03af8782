// Follows a code-generation job on the coupon page: polls its progress, then reloads the page
// so the new codes show. The page works without it (a Refresh link does the same by hand).
"use strict";
(function () {
  const box = document.querySelector("[data-job-url]");
  if (!box) return;
  const url = box.getAttribute("data-job-url");
  const bar = box.querySelector("progress");
  const text = box.querySelector(".job-text");
  async function poll() {
    let job;
    try {
      const reply = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!reply.ok) return; // signed out meanwhile: leave the page as it is
      job = await reply.json();
    } catch (_) {
      setTimeout(poll, 2000);
      return;
    }
    bar.max = job.total;
    bar.value = job.done;
    text.textContent = job.status + ": " + job.done + " of " + job.total;
    if (job.status === "queued" || job.status === "running") {
      setTimeout(poll, 500);
    } else {
      window.location.reload();
    }
  }
  setTimeout(poll, 300);
})();
