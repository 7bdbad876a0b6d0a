// The loaded graph as the frontend sees it, plus its own UI -> API conversion (app.graphToPrompt()) and the
// canvas view: its transform (ds), its place on the page and each node's bounding box (title bar included) and size.
// Returns JSON-safe data: every node's type, whether that type is registered, error flags, its
// widgets_values as node.serialize() saves them, each combo widget's value with its options, and its
// transient widgets: previews the frontend adds at run time (e.g. "video-preview") that are never saved
// in the file (widget.serialize === false) yet still reach the prompt (options.serialize is not false).
// The prompt is taken first: widgets are only ever added, so every transient input in it is listed.
async () => {
  const prompt = await window.app.graphToPrompt();
  const registered = window.LiteGraph.registered_node_types;
  const nodes = window.app.graph.nodes.map((node) => {
    const widgets = node.widgets || [];
    const serialized = JSON.parse(JSON.stringify(node.serialize()));
    const combos = widgets
      .filter((w) => w.type === "combo")
      .map((w) => {
        const values = typeof w.options?.values === "function" ? w.options.values() : w.options?.values;
        return { name: w.name, value: w.value, options: values || [] };
      });
    return {
      id: String(node.id),
      type: node.type,
      registered: Object.prototype.hasOwnProperty.call(registered, node.type),
      has_errors: Boolean(node.has_errors),
      widgets_values: serialized.widgets_values ?? [],
      combos,
      transient_widgets: widgets.filter((w) => w.serialize === false && w.options?.serialize !== false).map((w) => w.name),
      bounds: Array.from(node.getBounding()),
      size: Array.from(node.size),
    };
  });
  const canvas = window.app.canvas;
  return {
    view: {
      scale: canvas.ds.scale, offset: Array.from(canvas.ds.offset),
      left: canvas.canvas.getBoundingClientRect().left, top: canvas.canvas.getBoundingClientRect().top,
    },
    nodes,
    missing: window.__avgenMissing ?? null, // null: afterConfigureGraph did not run
    output: JSON.parse(JSON.stringify(prompt.output)),
  };
}
