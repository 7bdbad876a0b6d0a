// Registers a frontend extension that keeps the missing node types the app reports after configuring a
// graph (strings in frontend 1.35, objects with a `type` in later versions) in window.__avgenMissing.
() => {
  window.__avgenMissing = null;
  window.app.registerExtension({
    name: "AVGen.Test.RecordMissingNodes",
    afterConfigureGraph(missing) {
      window.__avgenMissing = (missing || []).map((m) => (typeof m === "string" ? m : m.type));
    },
  });
}
