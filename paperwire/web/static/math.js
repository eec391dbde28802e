// Formulas: each <span class="math" data-tex="…"> holds a readable form of its formula (what readers without
// scripts see); KaTeX, loaded only on pages that have formulas, replaces it with typeset math. A formula KaTeX
// cannot read keeps its readable form.
(() => {
  const formulas = document.querySelectorAll(".math[data-tex]");
  if (!formulas.length) return;
  const style = document.createElement("link");
  style.rel = "stylesheet";
  style.href = "/static/katex/katex.min.css";
  document.head.appendChild(style);
  const script = document.createElement("script");
  script.src = "/static/katex/katex.min.js";
  script.onload = () => {
    for (const formula of formulas) {
      const typeset = document.createElement("span");
      try {
        // trust stays off: \href, \url and \html… commands are refused, so a formula cannot make links or markup
        window.katex.render(formula.dataset.tex, typeset, { throwOnError: true, strict: "ignore", maxSize: 20, maxExpand: 200 });
      } catch (error) {
        continue;
      }
      formula.replaceChildren(...typeset.childNodes);
      formula.classList.add("typeset");
    }
  };
  document.head.appendChild(script);
})();
