// The dashboard grid: 12 columns of rows of fixed height. Each widget's place is saved in its
// `display_config.grid` as {x, y, w, h} (column and row from 0, width and height in cells).
// Widgets without a valid place are put in the first free spot; overlaps are resolved by
// moving the later widget down. In edit mode cards can be dragged and resized with the mouse
// (or a finger); on a phone-width screen the grid is one column, in grid order.

export const COLUMNS = 12;
const MAX_HEIGHT = 12;

const SIZES = {
  number: { w: 3, h: 2 },
  line: { w: 6, h: 3 },
  gauge: { w: 3, h: 3 },
  table: { w: 4, h: 4 },
};

// The default size of a widget kind.
export function defaultSize(kind) {
  return { ...(SIZES[kind] || SIZES.number) };
}

// The smallest size of a card of this kind.
export function minSize(kind) {
  return kind === 'table' ? { w: 3, h: 2 } : { w: 2, h: 2 };
}

const int = (v) => (Number.isInteger(v) ? v : null);

// A saved place, clamped to the grid, or null when missing or malformed.
export function validPlace(grid) {
  if (!grid) return null;
  const [x, y, w, h] = [int(grid.x), int(grid.y), int(grid.w), int(grid.h)];
  if ([x, y, w, h].some((v) => v === null) || x < 0 || y < 0 || w < 1 || h < 1) return null;
  const width = Math.min(w, COLUMNS);
  return { x: Math.min(x, COLUMNS - width), y, w: width, h: Math.min(h, MAX_HEIGHT) };
}

export function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

// The first spot (top to bottom, left to right) where a w × h card fits among `taken`.
export function firstFree(taken, w, h) {
  for (let y = 0; ; y += 1) {
    for (let x = 0; x + w <= COLUMNS; x += 1) {
      const spot = { x, y, w, h };
      if (!taken.some((t) => overlaps(t, spot))) return spot;
    }
  }
}

// Places `items` ([{id, kind, grid}]): saved places first (later overlapping ones moved down),
// then the unplaced ones in the first free spots. Returns Map id → {x, y, w, h}.
export function arrange(items) {
  const placed = new Map();
  const taken = [];
  const saved = items.filter((i) => validPlace(i.grid));
  saved.sort((a, b) => validPlace(a.grid).y - validPlace(b.grid).y || validPlace(a.grid).x - validPlace(b.grid).x);
  for (const item of saved) {
    const spot = settle(validPlace(item.grid), taken);
    placed.set(item.id, spot);
    taken.push(spot);
  }
  for (const item of items.filter((i) => !validPlace(i.grid))) {
    const { w, h } = defaultSize(item.kind);
    const spot = firstFree(taken, w, h);
    placed.set(item.id, spot);
    taken.push(spot);
  }
  return placed;
}

// `spot`, moved down until it overlaps nothing in `taken`.
function settle(spot, taken) {
  const s = { ...spot };
  for (;;) {
    const hit = taken.filter((t) => overlaps(t, s));
    if (!hit.length) return s;
    s.y = Math.max(...hit.map((t) => t.y + t.h));
  }
}

// `places` (Map id → place) after the card `id` moved to `spot`: the others it now overlaps
// move down, in grid order. Returns a new Map.
export function moveTo(places, id, spot) {
  const result = new Map([[id, spot]]);
  const taken = [spot];
  const others = [...places.entries()].filter(([other]) => other !== id);
  others.sort(([, a], [, b]) => a.y - b.y || a.x - b.x);
  for (const [other, place] of others) {
    const settled = settle(place, taken);
    result.set(other, settled);
    taken.push(settled);
  }
  return result;
}

// Lets the user drag cards of `grid` (the element) to move them, and their corner handle to
// resize them. `options`: {places() → Map, kindOf(id), preview(Map), commit(Map)}.
export function enableDragging(grid, options) {
  let drag = null;

  const cell = () => {
    const rect = grid.getBoundingClientRect();
    const style = getComputedStyle(grid);
    const gap = parseFloat(style.columnGap) || 0;
    const rowHeight = parseFloat(style.gridAutoRows) || 80;
    return { rect, colWidth: (rect.width - gap * (COLUMNS - 1)) / COLUMNS, rowHeight, gap };
  };

  grid.addEventListener('pointerdown', (event) => {
    if (!grid.classList.contains('is-editing') || event.button !== 0) return;
    const card = event.target.closest('.card');
    if (!card || event.target.closest('button, a, input, select, textarea')) return;
    if (getComputedStyle(grid).gridTemplateColumns.split(' ').length < COLUMNS) return;
    const id = card.dataset.widgetId;
    const start = options.places().get(id);
    if (!start) return;
    event.preventDefault();
    card.setPointerCapture(event.pointerId);
    drag = {
      id, card, start, x: event.clientX, y: event.clientY,
      resizing: Boolean(event.target.closest('.resize-handle')),
      places: options.places(), result: null,
    };
    card.classList.add('is-dragging');
  });

  grid.addEventListener('pointermove', (event) => {
    if (!drag) return;
    const { colWidth, rowHeight, gap } = cell();
    const dx = Math.round((event.clientX - drag.x) / (colWidth + gap));
    const dy = Math.round((event.clientY - drag.y) / (rowHeight + gap));
    const { start } = drag;
    let spot;
    if (drag.resizing) {
      const min = minSize(options.kindOf(drag.id));
      const w = Math.max(min.w, Math.min(COLUMNS - start.x, start.w + dx));
      const h = Math.max(min.h, Math.min(MAX_HEIGHT, start.h + dy));
      spot = { ...start, w, h };
    } else {
      const x = Math.max(0, Math.min(COLUMNS - start.w, start.x + dx));
      const y = Math.max(0, start.y + dy);
      spot = { ...start, x, y };
    }
    drag.result = moveTo(drag.places, drag.id, spot);
    options.preview(drag.result);
  });

  const finish = (commit) => {
    if (!drag) return;
    drag.card.classList.remove('is-dragging');
    const { result, places } = drag;
    drag = null;
    if (commit && result) options.commit(result);
    else options.preview(places);
  };
  grid.addEventListener('pointerup', () => finish(true));
  grid.addEventListener('pointercancel', () => finish(false));
  // With the keyboard: arrow keys move the focused card, shift + arrow keys resize it.
  const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  grid.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') finish(false);
    const card = event.target.classList && event.target.classList.contains('card') ? event.target : null;
    if (!card || !grid.classList.contains('is-editing') || !steps[event.key]) return;
    const places = options.places();
    const start = places.get(card.dataset.widgetId);
    if (!start) return;
    event.preventDefault();
    const [dx, dy] = steps[event.key];
    const min = minSize(options.kindOf(card.dataset.widgetId));
    const spot = event.shiftKey
      ? { ...start, w: Math.max(min.w, Math.min(COLUMNS - start.x, start.w + dx)), h: Math.max(min.h, Math.min(MAX_HEIGHT, start.h + dy)) }
      : { ...start, x: Math.max(0, Math.min(COLUMNS - start.w, start.x + dx)), y: Math.max(0, start.y + dy) };
    options.commit(moveTo(places, card.dataset.widgetId, spot));
  });
}
