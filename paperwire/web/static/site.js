// Votes without a page reload; the forms work without this script too.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.classList || !form.classList.contains("vote")) return;
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    // form.action would be the hidden input named "action", so read the attribute
    const response = await fetch(form.getAttribute("action"), {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "Accept": "application/json" },
    });
    if (response.status === 401) { window.location = "/login?next=" + encodeURIComponent(location.pathname); return; }
    if (!response.ok) { form.submit(); return; }
    const data = await response.json();
    document.querySelectorAll(`form.vote button[data-paper="${CSS.escape(data.id)}"]`).forEach((other) => {
      const otherForm = other.closest("form");
      otherForm.classList.toggle("voted", data.voted);
      otherForm.querySelector("input[name=action]").value = data.voted ? "down" : "up";
      other.setAttribute("aria-pressed", String(data.voted));
      other.title = data.voted ? "Take your vote back" : "Upvote";
      other.querySelector("[data-count]").textContent = String(data.upvotes);
    });
  } finally {
    button.disabled = false;
  }
});

// Save / Unsave on cards without a page reload (the library page's own controls reload, as their tags change).
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.classList || !form.classList.contains("save") || form.closest(".lib-actions")) return;
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const response = await fetch(form.getAttribute("action"), {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "Accept": "application/json" },
    });
    if (response.status === 401) { window.location = "/login?next=" + encodeURIComponent(location.pathname); return; }
    if (!response.ok) { form.submit(); return; }
    const data = await response.json();
    document.querySelectorAll(`form.save[data-paper="${CSS.escape(data.id)}"]`).forEach((other) => {
      if (other.closest(".lib-actions")) return;
      other.classList.toggle("saved", data.saved);
      other.querySelector("input[name=remove]").disabled = !data.saved;
      other.querySelector(".state").hidden = !data.saved;
      const otherButton = other.querySelector("button");
      otherButton.textContent = data.saved ? "Unsave" : "Save";
      otherButton.title = data.saved ? "Remove from your library" : "Save to your library";
    });
  } finally {
    button.disabled = false;
  }
});
