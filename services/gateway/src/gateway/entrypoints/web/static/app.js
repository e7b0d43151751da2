// Mailstify's few behaviours beyond htmx: merge-field insert buttons for the Trix editor, and
// copying a freshly created API key. No inline scripts (the pages' CSP forbids them).
document.addEventListener("click", (event) => {
  const insert = event.target.closest("[data-insert]");
  if (insert) {
    const editor = document.querySelector(`trix-editor[input="${insert.dataset.target}"]`);
    if (editor && editor.editor) {
      editor.editor.insertString(insert.dataset.insert);
      editor.focus();
    }
    event.preventDefault();
  }
  const copy = event.target.closest("[data-copy]");
  if (copy && navigator.clipboard) {
    navigator.clipboard.writeText(document.getElementById(copy.dataset.copy).textContent.trim());
    copy.textContent = "Copied";
  }
});

// After an htmx form adds something, empty the form for the next entry.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.target;
  if (form.matches && form.matches("form[data-reset-on-success]") && event.detail.successful) {
    form.reset();
    const first = form.querySelector("input:not([type=hidden])");
    if (first) first.focus();
  }
});
