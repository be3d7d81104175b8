/** A few DOM helpers: elements built from data, never from HTML strings (text is always text). */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | boolean | number | undefined | ((event: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

export const app = () => document.getElementById("app")!;

/** A section with a heading, whose body is filled in later. */
export function section(
  title: string,
  id: string,
  ...extra: Child[]
): { root: HTMLElement; body: HTMLElement } {
  const body = h("div", { class: "body" });
  const root = h("section", { id }, h("header", {}, h("h2", {}, title), ...extra), body);
  return { root, body };
}

/** A table from rows; `cells` turns a row into its cells. */
export function table<T>(
  headings: string[],
  rows: T[],
  cells: (row: T) => Child[],
  empty = "None.",
): HTMLElement {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, ...headings.map((t) => h("th", {}, t)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...cells(r).map((c) => h("td", {}, c))))),
  );
}

/** A button that asks once more before it acts: the first click arms it. */
export function confirmButton(label: string, ask: string, act: () => Promise<void>): HTMLButtonElement {
  const button = h("button", { type: "button", class: "danger" }, label);
  let armed = false;
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = ask;
      return;
    }
    button.disabled = true;
    await act();
  });
  return button;
}

export function actionButton(label: string, act: () => Promise<void>, attrs: Attrs = {}): HTMLButtonElement {
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await act();
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** Shows an error where the user acted; it goes away on the next action. */
export function showError(err: unknown): void {
  const text = err instanceof Error ? err.message : String(err);
  let box = document.getElementById("error");
  if (!box) {
    box = h("div", { id: "error", role: "alert" });
    document.body.prepend(box);
  }
  replace(box, text, " ", h("button", { type: "button", onclick: () => box!.remove() }, "Dismiss"));
}
