import { h } from './api.js';
import { classColour } from './dataset-view.js';

const HANDLE = 8;
const MIN_SIZE = 4;

/**
 * A box editor on a canvas: boxes in image pixels; drag on empty space draws a box of the current
 * class, drag inside a box moves it, drag a corner resizes it; Delete removes the selected box,
 * 1–9 relabel it. `onChange` hears every change.
 */
export function boxEditor(url, width, height, initial, classNames, onChange = () => {}) {
  const canvas = h('canvas', {
    class: 'review-canvas',
    width: String(width),
    height: String(height),
    tabindex: '0',
  });
  const state = {
    boxes: initial.map((b) => ({ ...b })),
    selected: initial.length ? 0 : -1,
    cls: classNames[0] || 'object',
    drag: null,
  };
  const img = new Image();
  const colour = (name) => classColour(Math.max(0, classNames.indexOf(name)));
  const draw = () => {
    const g = canvas.getContext('2d');
    g.clearRect(0, 0, width, height);
    if (img.complete && img.naturalWidth) g.drawImage(img, 0, 0, width, height);
    g.font = `${Math.max(12, width / 45)}px sans-serif`;
    state.boxes.forEach((b, i) => {
      g.lineWidth = i === state.selected ? Math.max(3, width / 150) : Math.max(2, width / 250);
      g.strokeStyle = colour(b.className);
      g.strokeRect(b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1);
      g.fillStyle = colour(b.className);
      g.fillText(b.className, b.x1 + 3, Math.max(12, b.y1 - 3));
      if (i === state.selected)
        for (const [x, y] of corners(b)) g.fillRect(x - HANDLE / 2, y - HANDLE / 2, HANDLE, HANDLE);
    });
    canvas.dataset.boxes = String(state.boxes.length);
  };
  const changed = () => {
    draw();
    onChange(state);
  };
  img.onload = draw;
  img.src = url;
  const corners = (b) => [
    [b.x1, b.y1],
    [b.x2, b.y1],
    [b.x1, b.y2],
    [b.x2, b.y2],
  ];
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * width) / r.width, ((e.clientY - r.top) * height) / r.height];
  };
  const clamp = (v, max) => Math.min(max, Math.max(0, v));
  canvas.addEventListener('pointerdown', (e) => {
    canvas.focus();
    const [x, y] = at(e);
    const tol = (HANDLE * width) / canvas.getBoundingClientRect().width;
    const sel = state.boxes[state.selected];
    const corner = sel
      ? corners(sel).findIndex(([cx, cy]) => Math.abs(cx - x) <= tol && Math.abs(cy - y) <= tol)
      : -1;
    if (corner >= 0) state.drag = { kind: 'resize', corner, start: [x, y], box: { ...sel } };
    else {
      const hit = state.boxes.findLastIndex((b) => x >= b.x1 && x <= b.x2 && y >= b.y1 && y <= b.y2);
      if (hit >= 0) {
        state.selected = hit;
        state.drag = { kind: 'move', start: [x, y], box: { ...state.boxes[hit] } };
      } else {
        state.boxes.push({ className: state.cls, x1: x, y1: y, x2: x, y2: y });
        state.selected = state.boxes.length - 1;
        state.drag = { kind: 'draw', start: [x, y] };
      }
    }
    canvas.setPointerCapture(e.pointerId);
    draw();
  });
  canvas.addEventListener('pointermove', (e) => {
    const d = state.drag;
    if (!d) return;
    const [x, y] = at(e);
    const b = state.boxes[state.selected];
    if (d.kind === 'draw')
      Object.assign(b, {
        x1: Math.min(d.start[0], x),
        y1: Math.min(d.start[1], y),
        x2: Math.max(d.start[0], x),
        y2: Math.max(d.start[1], y),
      });
    else if (d.kind === 'move') {
      // the whole box stays inside the image
      const dx = Math.max(-d.box.x1, Math.min(width - d.box.x2, x - d.start[0]));
      const dy = Math.max(-d.box.y1, Math.min(height - d.box.y2, y - d.start[1]));
      Object.assign(b, { x1: d.box.x1 + dx, x2: d.box.x2 + dx, y1: d.box.y1 + dy, y2: d.box.y2 + dy });
    } else {
      const nx = clamp(x, width);
      const ny = clamp(y, height);
      const c = d.corner;
      Object.assign(b, {
        x1: c % 2 === 0 ? nx : d.box.x1,
        x2: c % 2 === 1 ? nx : d.box.x2,
        y1: c < 2 ? ny : d.box.y1,
        y2: c >= 2 ? ny : d.box.y2,
      });
      if (b.x1 > b.x2) [b.x1, b.x2] = [b.x2, b.x1];
      if (b.y1 > b.y2) [b.y1, b.y2] = [b.y2, b.y1];
    }
    draw();
  });
  const end = () => {
    if (!state.drag) return;
    const b = state.boxes[state.selected];
    // a click without a drag does not leave a zero-sized box behind
    if (state.drag.kind === 'draw' && (b.x2 - b.x1 < MIN_SIZE || b.y2 - b.y1 < MIN_SIZE)) {
      state.boxes.splice(state.selected, 1);
      state.selected = -1;
    }
    state.drag = null;
    changed();
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  canvas.addEventListener('keydown', (e) => {
    if ((e.key === 'Delete' || e.key === 'Backspace') && state.selected >= 0) {
      state.boxes.splice(state.selected, 1);
      state.selected = Math.min(state.selected, state.boxes.length - 1);
      e.preventDefault();
      changed();
    } else if (/^[1-9]$/.test(e.key) && classNames[Number(e.key) - 1]) {
      const name = classNames[Number(e.key) - 1];
      state.cls = name;
      if (state.selected >= 0) state.boxes[state.selected].className = name;
      e.preventDefault();
      changed();
    } else if (e.key === 'Tab' && state.boxes.length) {
      state.selected = (state.selected + 1) % state.boxes.length;
      e.preventDefault();
      draw();
    }
  });
  return {
    canvas,
    state,
    setClass(name) {
      state.cls = name;
      if (state.selected >= 0) state.boxes[state.selected].className = name;
      changed();
    },
  };
}
