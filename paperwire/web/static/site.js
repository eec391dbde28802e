// Votes and Save / Unsave without a page reload; the forms work without this script too.

// Post `form` as fetch and hand its JSON answer to `apply`; a refusal falls back to the plain form post.
async function postInPlace(form, apply) {
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
    apply(await response.json());
  } finally {
    button.disabled = false;
  }
}

function showVote(data) {
  document.querySelectorAll(`form.vote button[data-paper="${CSS.escape(data.id)}"]`).forEach((other) => {
    const otherForm = other.closest("form");
    otherForm.classList.toggle("voted", data.voted);
    otherForm.querySelector("input[name=action]").value = data.voted ? "down" : "up";
    other.setAttribute("aria-pressed", String(data.voted));
    other.title = data.voted ? "Take your vote back" : "Upvote";
    other.querySelector("[data-count]").textContent = String(data.upvotes);
  });
}

// The library page's own controls reload, as their tags change.
function showSaved(data) {
  document.querySelectorAll(`form.save[data-paper="${CSS.escape(data.id)}"]`).forEach((other) => {
    if (other.closest(".lib-actions")) return;
    other.classList.toggle("saved", data.saved);
    other.querySelector("input[name=remove]").disabled = !data.saved;
    other.querySelector(".state").hidden = !data.saved;
    const otherButton = other.querySelector("button");
    otherButton.textContent = data.saved ? "Unsave" : "Save";
    otherButton.title = data.saved ? "Remove from your library" : "Save to your library";
  });
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.classList) return;
  if (form.classList.contains("vote")) {
    event.preventDefault();
    postInPlace(form, showVote);
  } else if (form.classList.contains("save") && !form.closest(".lib-actions")) {
    event.preventDefault();
    postInPlace(form, showSaved);
  }
});
