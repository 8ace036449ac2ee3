// Isoline review client: NiiVue viewer + structure editor talking to `isoline serve`.
//
// Drawing model: the structure being edited lives in NiiVue's drawing layer (a bitmap on the
// CT grid in NiiVue's RAS voxel order). Every change (brush stroke, sphere, threshold clip,
// slice interpolation, server edit) is recorded as a sparse diff against a shadow copy, which
// gives an unlimited undo/redo stack (capped at UNDO_LIMIT). Save uploads the drawing as
// NIfTI; margins/booleans/smoothing/islands run on the server (core::mask_ops) and come back
// as a new version that is loaded into the drawing as one undoable step.
import { Niivue, NVImage, SLICE_TYPE, DRAG_MODE, SHOW_RENDER } from '@niivue/niivue';
import { gzipSync } from 'fflate';

const UNDO_LIMIT = 100;
const PRESETS = {
  soft: { w: 400, l: 40 },
  lung: { w: 1500, l: -600 },
  bone: { w: 1800, l: 400 },
  brain: { w: 80, l: 40 },
};

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get('token') || '';

const state = {
  info: null,
  structures: [],       // from the server
  overlays: new Map(),  // id -> NVImage
  visible: new Map(),   // id -> bool
  editId: null,
  editBase: 0,
  dirty: false,
  pendingActions: [],
  undo: [],
  redo: [],
  shadow: null,
  tool: 'none',
  painting: false,
  ctRAS: null,
  dose: null,
  isodose: null,
  busy: false,
  busyWhat: '',          // what the running request is ("save", "approval", ...)
  busyPaint: false,      // painting allowed while busy (the dose job's polling)
  seq: 0,                // counts user actions: a poll answer from before one is stale
  remote: [],            // the latest versions on the server (GET /api/versions, polled)
  flagsOpen: new Set(),  // structures whose quality flags are unfolded in the list
  // Drafts: the server keeps each reviewer's unsaved drawing of a structure, one per tab (see
  // "Drafts").
  drafts: [],            // every draft on the server (all reviewers and tabs; no masks)
  draftKey: '',          // the key (tab) under which the server keeps this tab's drawing now
  draftReplaces: null,   // {id, refs: [{tab, seq}]}: own drafts this drawing was restored from, as
                         // read (removed once it is kept, unless written since)
  draftTimer: null,
  draftChain: Promise.resolve(),  // draft requests, one after the other (a save waits for them)
  draftSeq: 0,           // counts changes of the drawing
  draftSentSeq: 0,       // the change the server's draft holds
  draftLeaveSeq: -1,     // the change sent when the page was hidden or left
  draftLeaving: null,    // that request (never rejects)
  draftRetries: 0,       // timed draft requests that failed in a row (the next waits longer)
};
// This page's id in the keys of its drafts ("<id>-1", "<id>-2": a new key when the drawing is
// set aside), and those of earlier pages of this tab (before a reload), to say where a draft
// comes from.
const draftTab = Math.random().toString(36).slice(2, 12);
let draftKeyCount = 0;
function newDraftKey() {
  return `${draftTab}-${++draftKeyCount}`;
}
state.draftKey = newDraftKey();
const EARLIER_TABS = 'isoline.draftTabs';
let earlierTabs = [];
try {
  earlierTabs = JSON.parse(sessionStorage.getItem(EARLIER_TABS) || '[]').filter((t) => typeof t === 'string');
  sessionStorage.setItem(EARLIER_TABS, JSON.stringify(earlierTabs.concat([draftTab]).slice(-20)));
} catch (e) { /* storage off: drafts of this tab before a reload are called another window's */ }
// A duplicated tab starts with a copy of its original's sessionStorage, so the pages before
// it there are the original's, not this window's before a reload: the page asks whether the
// last of them is still open (BroadcastChannel, this browser's other tabs of this origin); when
// it answers, this tab is a copy and those pages are another window's.
try {
  const pages = new BroadcastChannel('isoline.pages');
  const last = earlierTabs[earlierTabs.length - 1];
  pages.onmessage = (e) => {
    const m = e.data || {};
    if (m.open === draftTab) pages.postMessage({ here: draftTab });
    if (last && m.here === last && earlierTabs.length) {
      earlierTabs = [];
      window.app.duplicated = true;
      try { sessionStorage.setItem(EARLIER_TABS, JSON.stringify([draftTab])); } catch (err) { /* storage off */ }
      renderDrafts();
    }
  };
  if (last) pages.postMessage({ open: last });
} catch (e) { /* no BroadcastChannel: a duplicated tab calls its original's drafts this window's before a reload */ }
// timeoutMs: how long a request may take before the client gives up and says so (tests lower it);
// draftDelayMs: how long after the last change the unsaved drawing goes to the server as a draft
// keepaliveMax: the largest body a request that outlives the page may have (browsers: 64 KB)
window.app = { state, timeoutMs: 30000, pollMs: 12000, draftDelayMs: 2000, keepaliveMax: 60000 };

// The header's status line: the state, and the latest error in full (truncated on screen,
// the whole text in the tooltip), so that it is seen without scrolling to the messages.
function setStatus(s, bad = /^(error|conflict|approval refused|approval failed|busy|type your name)/.test(s)) {
  const el = $('status');
  el.textContent = s;
  el.title = s;
  el.className = bad ? 'bad' : '';
}
function message(text, kind = '') {
  const d = document.createElement('div');
  d.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (kind) d.className = kind;
  $('messages').prepend(d);
  while ($('messages').childNodes.length > 30) $('messages').lastChild.remove();
}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

// A change records who made it: no request that changes anything goes without the name.
function requireReviewer(what, more = '') {
  if (reviewer()) return;
  const box = $('reviewer');
  box.classList.add('need');
  box.focus();
  throw new Error(`type your name to ${what} (Reviewer box, top right)${more}`);
}

// `encoding`: the body's Content-Encoding (gzip: a draft's .nii.gz gzipped once more);
// `author`: the name the request goes under, when not the one typed now (a draft kept in this
// browser from an earlier page).
async function api(method, path, body, { raw = false, binary = null, timeoutMs = 0, what = '', anonymous = false, keepalive = false,
                                         encoding = '', author = null } = {}) {
  if (method !== 'GET' && !anonymous && author === null) requireReviewer('save changes', '; your drawing is kept');
  // A header carries bytes, not text: the name goes percent-encoded UTF-8 ("Müller", "Kovač").
  const headers = { 'X-Isoline-Token': token };
  const who = author === null ? reviewer() : author;
  if (who) headers['X-Isoline-Author'] = encodeURIComponent(who);
  // Every request has a time limit (volumes and the approval a longer one), so that a stalled
  // server is reported instead of a status that says "saving…" for ever.
  const limit = timeoutMs || (raw ? Math.max(120000, 4 * window.app.timeoutMs) : window.app.timeoutMs);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), limit);
  const init = { method, headers, signal: abort.signal, keepalive };  // keepalive: outlives the page (<= 64 KB)
  if (binary) {
    init.body = binary;
    headers['Content-Type'] = 'application/octet-stream';
    if (encoding) headers['Content-Encoding'] = encoding;
  } else if (body !== undefined) {
    init.body = JSON.stringify(reviewer() ? { author: reviewer(), ...body } : body);
    headers['Content-Type'] = 'application/json';
  }
  let r;
  try {
    r = await fetch(path, init);
    if (r.ok) {
      const out = await (raw ? r.arrayBuffer() : r.json());
      clearTimeout(timer);
      return out;
    }
  } catch (e) {
    clearTimeout(timer);
    if (r && e.name !== 'TypeError' && !abort.signal.aborted) throw e;  // a bad answer, not a lost server
    if (abort.signal.aborted) {
      throw new Error(`no answer from the review server within ${Math.round(limit / 1000)} s (${what || `${method} ${path.split('?')[0]}`}): ` +
                      'it may be busy or stopped; unsaved drawing is kept in this tab; try again');
    }
    // A server started again on the case without --port takes this port again when it is
    // free (review/port) and keeps the token: this tab then saves.
    const port = location.port || (location.protocol === 'https:' ? '443' : '80');
    throw new Error('the review server is not reachable (stopped?): unsaved drawing is kept in this tab; ' +
                    `start \`isoline serve\` again on this case (it comes back on port ${port}, or add --port ${port}) ` +
                    'and retry');
  }
  clearTimeout(timer);
  let b = null;
  try { b = await r.json(); } catch (e) { /* not JSON */ }
  throw new ApiError(r.status, b);
}

// The reviewer's name as typed (never a default: the approval must say who approved).
// Kept in this browser across reloads (localStorage).
const REVIEWER_KEY = 'isoline.reviewer';
function reviewer() {
  return $('reviewer').value.trim();
}
function storedReviewer() {
  try { return localStorage.getItem(REVIEWER_KEY) || ''; } catch (e) { return ''; }
}
function rememberReviewer() {
  $('reviewer').classList.toggle('need', !reviewer());
  try {
    if (reviewer()) localStorage.setItem(REVIEWER_KEY, reviewer());
    else localStorage.removeItem(REVIEWER_KEY);
  } catch (e) { /* storage off: the name is typed again after a reload */ }
}

async function loadImage(path, name) {
  const buf = await api('GET', path, undefined, { raw: true });
  return NVImage.new(buf, name);
}

// ---------------------------------------------------------------------------------------
// Viewer

const nv = new Niivue({
  backColor: [0, 0, 0, 1],
  show3Dcrosshair: true,
  crosshairColor: [0.2, 0.8, 1, 0.6],
  crosshairWidth: 0.5,
  crosshairWidthUnit: 'mm',
  dragMode: DRAG_MODE.contrast,  // wheel: slice; right-drag: W/L (the select switches to pan/zoom)
  multiplanarShowRender: SHOW_RENDER.NEVER,
  isColorbar: false,
  maxDrawUndoBitmaps: 2,
  drawingEnabled: false,
  // Radiological convention, as in Eclipse, RayStation and Monaco: the patient's right on the
  // screen's left in axial and coronal views.
  isRadiologicalConvention: true,
  atlasOutline: 1,  // structures: opaque outline (see structureFillAlpha)
});
window.app.nv = nv;
window.nv = nv;

// 2-D slice shader. NiiVue's stock one (fragSliceMMShader) also serves overlay outlines,
// PAQD atlases and drawing rims, none of which this client uses; its extra samples and
// branches cost every fragment under software WebGL (SwiftShader), which made one slice
// step about 2x slower. This one computes the same colour for what is used here
// (background, the blended overlay layer), the browser test compares both shaders' pixels;
// it draws the drawing layer (the structure being edited) last, with a white rim, where the
// stock shader draws it under the overlays. `?shader=niivue` keeps the stock shader.
// (One uniform per line: NiiVue finds uniform names with a regex that takes the last name.)
const SLICE_SHADER = `#version 300 es
precision highp int;
precision highp float;
uniform highp sampler3D volume;
uniform highp sampler3D overlay;
uniform highp sampler3D drawing;
uniform float overlays;
uniform float opacity;
uniform float drawOpacity;
uniform float overlayAlphaShader;
in vec3 texPos;
out vec4 color;
void main() {
  vec4 background = texture(volume, texPos);
  color = vec4(background.rgb, opacity);
  vec4 ocolor = texture(overlay, texPos);
  ocolor.a *= overlayAlphaShader * step(0.5, overlays);
  float a = color.a + ocolor.a * (1.0 - color.a);
  color.rgb = mix(color.rgb, ocolor.rgb, ocolor.a / max(a, 1e-6));
  color.a = a;
  // The structure being edited (the drawing layer) is drawn last, over the dose colourwash,
  // isodose lines and other structures, so that painted voxels read the same everywhere:
  // red (the client paints value 1 only, eraser 0; NiiVue's drawing colour for 1, no
  // colour-table lookup per fragment) inside an opaque white rim 2 screen pixels wide (the
  // neighbours are looked up only where painted).
  vec3 dx = 2.0 * dFdx(texPos);
  vec3 dy = 2.0 * dFdy(texPos);
  if (drawOpacity > 0.0 && texture(drawing, texPos).r > 0.0) {
    float inside = min(min(texture(drawing, texPos + dx).r, texture(drawing, texPos - dx).r),
                       min(texture(drawing, texPos + dy).r, texture(drawing, texPos - dy).r));
    if (inside > 0.0) color.rgb = mix(color.rgb, vec3(1.0, 0.0, 0.0), drawOpacity);
    else color.rgb = vec3(1.0, 1.0, 1.0);
    color.a = max(drawOpacity, color.a);
  }
}`;

// Installs (or removes) the lean slice shader; returns the previous one. Used at start-up
// and by the tests to compare with the stock shader.
function useLeanSliceShader(on) {
  const prev = nv.customSliceShader;
  if (on && !window.app.leanShader) {
    nv.setCustomSliceShader(SLICE_SHADER);
    window.app.leanShader = nv.customSliceShader;
  }
  nv.customSliceShader = on ? window.app.leanShader : null;
  // what updateGLVolume() would set on the shader now in use (the rest is set per draw)
  const sh = on ? window.app.leanShader : nv.sliceMMShader;
  nv.gl.useProgram(sh.program);
  nv.gl.uniform1f(sh.uniforms.overlays, nv.overlays.length);
  nv.gl.uniform1f(sh.uniforms.drawOpacity, nv.drawOpacity);
  if (sh.uniforms.paqdUniforms) nv.gl.uniform4fv(sh.uniforms.paqdUniforms, nv.opts.paqdUniforms);
  return prev;
}
window.app.useLeanSliceShader = useLeanSliceShader;

// W/L in HU. W is at least 1 HU (W 0 would make a two-level picture without saying so).
function setWindow(w, l) {
  const ct = nv.volumes[0];
  if (!ct) return;
  if (!Number.isFinite(l)) l = Number(ct.cal_min + ct.cal_max) / 2;
  if (!(w >= 1)) {
    message(`window width ${Number.isFinite(w) ? w : '?'} HU: must be at least 1 HU; set to 1`, 'err');
    w = 1;
  }
  ct.cal_min = l - w / 2;
  ct.cal_max = l + w / 2;
  $('win-w').value = Math.round(w);
  $('win-l').value = Math.round(l);
  nv.updateGLVolume();
}

// The W/L boxes follow the window NiiVue set: right-drag (the HU range inside the dragged
// rectangle) and its double-click reset.
function windowChanged(vol) {
  if (!vol || vol !== nv.volumes[0]) return;
  const w = vol.cal_max - vol.cal_min, l = (vol.cal_max + vol.cal_min) / 2;
  $('win-w').value = Math.round(w);
  $('win-l').value = Math.round(l);
}

// Layouts. 'large' (the default): a large axial view (the one contours are edited on) on the
// left two thirds of the canvas, coronal above sagittal on the right third, each tile
// fitted into its cell at the same mm per pixel across and down (NiiVue's custom layout;
// it maps the mouse through the tiles it drew, as in its own layouts). 'multi' is NiiVue's
// A+C+S, where the three views share one scale (on pt_201 the axial view was then only
// about 218 x 257 px of a 640 px canvas), then one view at a time.
const LARGE_AXIAL_LAYOUT = [
  { sliceType: SLICE_TYPE.AXIAL, position: [0, 0, 0.66, 1] },
  { sliceType: SLICE_TYPE.CORONAL, position: [0.67, 0, 0.33, 0.495] },
  { sliceType: SLICE_TYPE.SAGITTAL, position: [0.67, 0.505, 0.33, 0.495] },
];

function setView(v) {
  const t = { large: SLICE_TYPE.MULTIPLANAR, multi: SLICE_TYPE.MULTIPLANAR, axial: SLICE_TYPE.AXIAL,
              coronal: SLICE_TYPE.CORONAL, sagittal: SLICE_TYPE.SAGITTAL }[v];
  // (a custom layout takes precedence over the slice type in NiiVue: set or clear it first)
  nv.customLayout = v === 'large' ? LARGE_AXIAL_LAYOUT.map((x) => ({ ...x, position: [...x.position] })) : null;
  nv.setSliceType(t);
  state.view = v;
  document.querySelectorAll('[data-view]').forEach((b) => pressed(b, b.dataset.view === v));
}
window.app.setView = setView;

// A toggle button's state, in colour and for screen readers.
function pressed(b, on) {
  b.classList.toggle('on', on);
  b.setAttribute('aria-pressed', String(on));
}

function labelColormap(rgb, name) {
  return { R: [0, rgb[0]], G: [0, rgb[1]], B: [0, rgb[2]], A: [0, 255], I: [0, 1], labels: ['', name] };
}

// How structures are drawn: an opaque outline in the structure's colour and a fill.
// 'auto' = a light fill while the dose colourwash is on (a filled red PTV over a red wash
// cannot be read), a stronger one otherwise; 'fill' = always the stronger fill; 'outline' =
// no fill. NiiVue draws a mask marked as a label volume (NIfTI intent 1002) with its
// "atlas" shader: the voxels with a face neighbour outside the mask (in 3-D, so every view
// shows the outline) at the alpha opts.atlasOutline (1), the others at the layer's opacity
// (the fill). A layer with opacity 0 is left out of the blend, so 'outline' fills at 0.001.
const FILL_ALPHA = { fill: 0.35, light: 0.1, outline: 0.001 };
// The structure being edited (NiiVue's drawing layer): red at this opacity inside its opaque
// white rim, over the dose. 0.6 hid the isodose lines inside a target being edited; at 0.3
// a 105 % line inside PTV70 keeps 70 % of its contrast, and the rim marks the painted edge.
const EDIT_FILL_ALPHA = 0.3;
const NIFTI_INTENT_LABEL = 1002;
function structureFillAlpha() {
  const mode = $('struct-style').value;
  if (mode === 'auto') return $('dose-wash').checked && state.dose ? FILL_ALPHA.light : FILL_ALPHA.fill;
  return FILL_ALPHA[mode] ?? FILL_ALPHA.fill;
}

// ---------------------------------------------------------------------------------------
// Structures

function structureById(id) {
  return state.structures.find((s) => s.id === id);
}

function renderStructures() {
  const tb = $('structures').querySelector('tbody');
  tb.innerHTML = '';
  for (const s of state.structures) {
    const tr = document.createElement('tr');
    tr.dataset.id = s.id;
    tr.dataset.name = s.name;
    if (s.id === state.editId) tr.classList.add('sel');
    const vis = state.visible.get(s.id) !== false;
    const origin = ORIGINS[s.origin] || ORIGINS.user;
    tr.innerHTML = `<td><input type="checkbox" class="vis" ${vis ? 'checked' : ''} title="show ${escapeHtml(s.name)}" ` +
      `aria-label="show ${escapeHtml(s.name)}"></td>` +
      `<td><span class="swatch" style="background:rgb(${s.color.join(',')})"></span> ${escapeHtml(s.name)}` +
      ` <span class="origin origin-${escapeHtml(s.origin)}" title="${origin.title}">${origin.tag}</span></td>` +
      `<td>${s.volume_cc.toFixed(1)}</td><td>${s.version}</td>` +
      `<td>${s.id === state.editId ? (state.dirty ? '✎*' : '✎') : ''}</td>`;
    tr.title = `${s.type} · ${s.origin} · v${s.version} by ${s.author}: ${s.action}`;
    tr.querySelector('.vis').addEventListener('click', (e) => {
      e.stopPropagation();
      toggleVisible(s.id, e.target.checked);
    });
    tr.addEventListener('click', () => guard(() => startEdit(s.id), 'switch of structure'));
    tb.appendChild(tr);
    const fr = flagRow(s);
    if (fr) tb.appendChild(fr);
  }
  const sel = $('bool-other');
  const cur = sel.value;
  sel.innerHTML = state.structures.filter((s) => s.id !== state.editId)
    .map((s) => `<option value="${escapeHtml(s.name)}">${escapeHtml(s.name)}</option>`).join('');
  if (cur) sel.value = cur;
  $('edit-name').textContent = state.editId ? structureById(state.editId).name : '(pick a structure)';
  // How many structures have quality flags nobody reviewed yet, beside Approve (and in its
  // confirmation); flags checked, or on a contour edited since, are reviewed.
  const open = flaggedStructures();
  const reviewed = state.structures.filter((x) => (x.flags || []).length && x.flags_state !== 'open');
  const fc = $('flag-count');
  fc.hidden = !open.length && !reviewed.length;
  fc.textContent = `⚑ ${open.length} flagged` + (reviewed.length ? ` · ${reviewed.length} reviewed` : '');
  fc.classList.toggle('done', !open.length);
  fc.title = (open.length ? `quality flags to check before approving (tick "checked" in the list):\n` +
    open.map((x) => `${x.name}: ${x.flags.join('; ')}`).join('\n') : 'no quality flags left to check') +
    (reviewed.length ? `\nreviewed:\n${reviewed.map((x) => `${x.name}: ${flagReview(x)}`).join('\n')}` : '');
  renderNotice();
  renderDrafts();
}

// Structures whose quality flags are still to be reviewed: not checked, contour not edited.
function flaggedStructures() {
  return state.structures.filter((s) => (s.flags || []).length && (s.flags_state || 'open') === 'open');
}

// What happened to a structure's flags, in words.
function flagReview(s) {
  const e = s.flags_edited_since, c = s.flags_check;
  if (s.flags_state === 'edited' && e) return `on the automatic contour (edited since: v${e.version} by ${e.author})`;
  if (s.flags_state === 'checked' && c) return `checked by ${c.author} ${c.time.replace('T', ' ').replace('Z', ' UTC')}`;
  return 'to check';
}

// The flags of a structure: a row under its own, one line whatever their length (cut with
// "…"; the whole text in the tooltip, and a click on it unfolds it in place, a second click
// folds it), so that long flags do not push the list and its buttons out of a laptop's
// window. Orange with a "checked" box while open; grey once checked (who, when) or once the
// contour was edited (they describe the automatic one).
function flagRow(s) {
  const flags = (s.flags || []).join('; ');
  if (!flags) return null;
  const st = s.flags_state || 'open';
  const tr = document.createElement('tr');
  tr.className = 'flag-row';
  tr.dataset.flagsOf = s.name;
  if (s.id === state.editId) tr.classList.add('sel');
  const box = st === 'edited' ? '' : `<label class="flag-check" title="I have checked these quality flags (recorded with your name)">` +
    `<input type="checkbox" ${st === 'checked' ? 'checked' : ''} aria-label="quality flags of ${escapeHtml(s.name)} checked"> checked</label>`;
  const note = st === 'open' ? '' : ` — ${flagReview(s)}`;
  const open = state.flagsOpen.has(s.id);
  tr.innerHTML = `<td></td><td colspan="4"><div class="flag flag-${st}${open ? ' open' : ''}">` +
    `<span class="flag-text" role="button" tabindex="0" aria-expanded="${open}" title="${escapeHtml(`${s.name}: ${flags}${note}`)}` +
    ` (click: ${open ? 'fold' : 'unfold'})">⚑ ${escapeHtml(flags)}${note ? `<span class="flag-note">${escapeHtml(note)}</span>` : ''}</span>` +
    `${box}</div></td>`;
  const text = tr.querySelector('.flag-text');
  const toggle = (e) => {
    e.stopPropagation();
    if (state.flagsOpen.has(s.id)) state.flagsOpen.delete(s.id); else state.flagsOpen.add(s.id);
    renderStructures();
  };
  text.addEventListener('click', toggle);
  text.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(e); } });
  const chk = tr.querySelector('.flag-check');
  if (chk) {
    chk.addEventListener('click', (e) => e.stopPropagation());
    chk.querySelector('input').addEventListener('change', (e) => {
      const want = e.target.checked;
      guard(() => checkFlags(s.id, want), 'flag check');
    });
  }
  // a click beside the text (not on it or on the box) picks the structure, as on its row
  tr.addEventListener('click', () => guard(() => startEdit(s.id), 'switch of structure'));
  return tr;
}

// Marks (or unmarks) a structure's quality flags as checked, as seen in its loaded version.
async function checkFlags(id, checked) {
  const s = structureById(id);
  try {
    requireReviewer('check flags');
    Object.assign(s, await api('POST', `/api/structures/${id}/flags`, { version: s.version, checked }));
  } finally {
    renderStructures();  // the box shows what the server recorded (unchanged on an error)
  }
  message(`${s.name}: quality flags ${checked ? 'checked' : 'unchecked'} by ${reviewer()}`, 'ok');
  if (state.editId === id && !$('history').hidden && $('history').dataset.id === String(id)) await showHistory();
}

// Who drew a structure, shown beside its name: the model's auto-contours are to be checked;
// given ones came with the case (the physician's targets); the reviewer's own.
const ORIGINS = {
  auto: { tag: 'auto', title: 'auto-contour (Isoline model): check it; approved as AUTOMATIC, SEMIAUTOMATIC once edited' },
  given: { tag: 'given', title: 'given with the case (not by the model, e.g. the physician\'s target); approved as MANUAL' },
  user: { tag: 'new', title: 'created in this review; approved as MANUAL' },
};

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

async function refreshStructures() {
  const before = new Map(state.structures.map((s) => [s.id, s.version]));
  state.structures = await api('GET', '/api/structures');
  state.remote = [];  // this list is at least as new as the last poll's
  // Versions saved elsewhere that come in with this list (other than the structure being
  // edited, whose changes are this tab's own or go through the conflict dialog): said.
  for (const s of state.structures)
    if (s.id !== state.editId && before.has(s.id) && s.version > before.get(s.id))
      message(`${s.name}: loaded v${s.version} by ${s.author} (${s.action})`);
  renderStructures();
  await refreshDeleted();
}

// Deleted structures keep their history: each can be brought back.
async function refreshDeleted() {
  const gone = await api('GET', '/api/structures/deleted');
  const box = $('deleted');
  box.innerHTML = gone.length ? 'Deleted: ' : '';
  for (const s of gone) {
    const b = document.createElement('button');
    b.textContent = `restore ${s.name}`;
    b.dataset.restore = s.name;
    b.addEventListener('click', () => guard(async () => {
      const r = await api('POST', `/api/structures/${s.id}/restore`, { base_version: s.version });
      message(`restored ${r.name} (version ${r.version})`, 'ok');
      await afterChange();
    }));
    box.appendChild(b);
  }
}

async function fetchOverlay(s) {
  const img = await loadImage(`/api/structures/${s.id}/mask.nii?version=${s.version}`, `${s.id}.nii`);
  img.setColormapLabel(labelColormap(s.color, s.name));
  img.__version = s.version;
  return img;
}

function setOpacityFor(id) {
  const img = state.overlays.get(id);
  if (!img) return;
  const vis = state.visible.get(id) !== false && id !== state.editId;
  // hidden: also not a label volume, else NiiVue would still draw its outline
  img.hdr.intent_code = vis ? NIFTI_INTENT_LABEL : 0;
  img.opacity = vis ? structureFillAlpha() : 0;
}

// Applies the structure style (after the colourwash or the style changed); the caller
// updates the GPU volume once.
function applyStructureStyle() {
  for (const s of state.structures) setOpacityFor(s.id);
}

function applyVisibility(id) {
  setOpacityFor(id);
  nv.updateGLVolume();
}

function toggleVisible(id, on) {
  state.visible.set(id, on);
  applyVisibility(id);
  if (id === state.editId) nv.setDrawOpacity(on ? EDIT_FILL_ALPHA : 0);
  nv.createOnLocationChange();  // the readout lists the visible structures
}

// Painting on a hidden structure would change it unseen: the brush and the eraser show the
// structure being edited again (as a TPS shows the structure it edits), and say so.
function ensureEditVisible() {
  const id = state.editId;
  if (id === null || state.visible.get(id) !== false) return false;
  toggleVisible(id, true);
  renderStructures();
  message(`${structureById(id).name} was hidden: shown again to paint on it`);
  return true;
}

// Loads the overlays whose version changed; one GPU upload for all of them (NiiVue
// re-blends every overlay on each update, which is slow for many large masks).
async function syncOverlays(forceCommit = false) {
  for (const s of state.structures)  // the body outline hides the anatomy: off until asked for
    if (!state.visible.has(s.id)) state.visible.set(s.id, s.type !== 'EXTERNAL');
  const ids = new Set(state.structures.map((s) => s.id));
  let changed = forceCommit;
  for (const [id, img] of state.overlays) {
    if (!ids.has(id)) {
      nv.volumes.splice(nv.volumes.indexOf(img), 1);
      state.overlays.delete(id);
      changed = true;
    }
  }
  const fresh = await Promise.all(state.structures
    .filter((s) => !state.overlays.has(s.id) || state.overlays.get(s.id).__version !== s.version)
    .map(async (s) => [s.id, await fetchOverlay(s)]));
  for (const [id, img] of fresh) {
    const old = state.overlays.get(id);
    if (old) nv.volumes[nv.volumes.indexOf(old)] = img;
    else nv.volumes.push(img);
    state.overlays.set(id, img);
    changed = true;
  }
  for (const s of state.structures) setOpacityFor(s.id);
  if (changed) commitVolumes();
  else nv.updateGLVolume();
}

// The first view goes through the target: the crosshair (so the three slices) at the centre
// of the target with the highest prescription in its name (PTV70, as `isoline dvh` reads
// it), else of the largest target. Returns its name, or null (no target: the CT's centre).
function centreOnTarget() {
  const rx = (s) => Math.max(0, ...(s.name.match(/\d+(\.\d+)?/g) || []).map(Number).filter((x) => x >= 10));
  const targets = state.structures.filter((s) => ['PTV', 'CTV', 'GTV'].includes(s.type) && s.voxels > 0)
    .sort((a, b) => rx(b) - rx(a) || b.voxels - a.voxels);
  const img = targets.length ? state.overlays.get(targets[0].id) : null;
  if (!img) return null;
  const d = [img.dimsRAS[1], img.dimsRAS[2], img.dimsRAS[3]];
  const [m] = img.getVolumeData([0, 0, 0], [d[0] - 1, d[1] - 1, d[2] - 1]);
  const c = [0, 0, 0];
  let n = 0;
  for (let z = 0, i = 0; z < d[2]; z++)
    for (let y = 0; y < d[1]; y++)
      for (let x = 0; x < d[0]; x++, i++)
        if (m[i] > 0) { c[0] += x; c[1] += y; c[2] += z; n++; }
  if (!n) return null;
  const now = nv.frac2vox(nv.scene.crosshairPos);
  nv.moveCrosshairInVox(...c.map((v, a) => Math.round(v / n) - now[a]));
  return targets[0].name;
}

// Field of view. NiiVue draws every 2-D tile over the whole CT grid (694 mm on an OpenKBP
// head-and-neck CT, where the neck is then a small picture). 'structures' (the first view)
// fits each tile to the bounding box of every structure but the Body/EXTERNAL plus 20 mm (the
// treated region: on that CT the Body is 500 mm wide at the shoulders), 'body' to the
// Body/EXTERNAL's plus 10 mm; either falls back on the other, and the box is clamped to the
// grid. NiiVue sizes and places its tiles (A+C+S layout, one view) from these four
// field-of-view functions and maps mouse positions through the tiles it drew, so painting,
// clicking, panning and zooming work unchanged, with the same mm per pixel across and down
// (aspect kept). 'full' is NiiVue's own (the whole grid).
const FOV_FNS = ['screenFieldOfViewVox', 'screenFieldOfViewMM', 'screenFieldOfViewExtendedVox',
                 'screenFieldOfViewExtendedMM'];

function fitBox(mode) {
  const live = state.structures.filter((s) => s.voxels > 0 && state.overlays.has(s.id));
  const body = live.filter((s) => s.type === 'EXTERNAL');
  const organs = live.filter((s) => s.type !== 'EXTERNAL');
  const onBody = mode === 'body' ? body.length > 0 : !organs.length;
  const use = onBody ? body : organs;
  if (!use.length || !nv.back) return null;
  const dims = [nv.back.dimsRAS[1], nv.back.dimsRAS[2], nv.back.dimsRAS[3]];
  const lo = [Infinity, Infinity, Infinity], hi = [-1, -1, -1];
  for (const s of use) {
    const img = state.overlays.get(s.id);
    const [m] = img.getVolumeData([0, 0, 0], [dims[0] - 1, dims[1] - 1, dims[2] - 1]);
    for (let z = 0, i = 0; z < dims[2]; z++)
      for (let y = 0; y < dims[1]; y++)
        for (let x = 0; x < dims[0]; x++, i++) {
          if (!m[i]) continue;
          if (x < lo[0]) lo[0] = x;
          if (x > hi[0]) hi[0] = x;
          if (y < lo[1]) lo[1] = y;
          if (y > hi[1]) hi[1] = y;
          if (z < lo[2]) lo[2] = z;
          if (z > hi[2]) hi[2] = z;
        }
  }
  if (hi[0] < 0) return null;
  // voxel edges -> mm (the same mm NiiVue's extents are in), then the margin, within the grid
  const a = nv.frac2mm(lo.map((v, k) => v / dims[k]));
  const b = nv.frac2mm(hi.map((v, k) => (v + 1) / dims[k]));
  const g0 = nv.frac2mm([0, 0, 0]), g1 = nv.frac2mm([1, 1, 1]);
  const margin = onBody ? 10 : 20;
  const mn = [0, 1, 2].map((k) => Math.max(Math.min(g0[k], g1[k]), Math.min(a[k], b[k]) - margin));
  const mx = [0, 1, 2].map((k) => Math.min(Math.max(g0[k], g1[k]), Math.max(a[k], b[k]) + margin));
  return { mn, mx, mode: onBody ? 'body' : 'structures', margin, from: use.map((s) => s.name) };
}

function setFov(mode) {
  const box = mode === 'full' ? null : fitBox(mode);
  for (const f of FOV_FNS) delete nv[f];
  if (box) {
    const sw = (v, acs) => nv.swizzleVec3MM(Float32Array.from(v), acs);
    const ext = (acs) => {
      const mnMM = sw(box.mn, acs), mxMM = sw(box.mx, acs);
      const fovMM = Float32Array.from([0, 1, 2].map((k) => mxMM[k] - mnMM[k]));
      return { mnMM, mxMM, rotation: Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]), fovMM };
    };
    nv.screenFieldOfViewVox = (acs = 0) => ext(acs).fovMM;
    nv.screenFieldOfViewMM = (acs = 0) => ext(acs).fovMM;
    nv.screenFieldOfViewExtendedVox = (acs = 0) => ext(acs);
    nv.screenFieldOfViewExtendedMM = (acs = 0) => ext(acs);
  }
  state.fov = box ? box.mode : 'full';
  state.fovBox = box;
  document.querySelectorAll('[data-fov]').forEach((b) => pressed(b, b.dataset.fov === state.fov));
  if (box) $(`btn-fov-${box.mode}`).title = `every view fitted to ${box.from.join(', ')} (+${box.margin} mm)`;
  nv.setPan2Dxyzmm([0, 0, 0, 1]);
  nv.drawScene();
  return state.fov;
}
window.app.setFov = setFov;

// After editing nv.volumes directly: what Niivue.setVolume() does, once.
function commitVolumes() {
  nv.back = nv.volumes[0];
  nv.overlays = nv.volumes.slice(1);
  nv.updateGLVolume();
}

// ---------------------------------------------------------------------------------------
// Editing: drawing layer, undo/redo as sparse diffs

function drawing() {
  return nv.drawBitmap;
}

function recordStep(label) {
  const cur = drawing();
  if (!cur || !state.shadow) return false;
  const sh = state.shadow;
  let n = 0;
  for (let i = 0; i < cur.length; i++) if (cur[i] !== sh[i]) n++;
  if (n === 0) return false;
  const idx = new Uint32Array(n);
  const before = new Uint8Array(n);
  const after = new Uint8Array(n);
  let k = 0;
  for (let i = 0; i < cur.length; i++) {
    if (cur[i] !== sh[i]) {
      idx[k] = i;
      before[k] = sh[i];
      after[k] = cur[i];
      sh[i] = cur[i];
      k++;
    }
  }
  state.undo.push({ label, idx, before, after });
  if (state.undo.length > UNDO_LIMIT) state.undo.shift();
  state.redo = [];
  markDirty(label);
  return true;
}

function markDirty(label) {
  state.dirty = true;
  if (label) state.pendingActions.push(label);
  scheduleDraft();
  updateButtons();
  renderStructures();
}

function applyDiff(step, useAfter) {
  const cur = drawing();
  const vals = useAfter ? step.after : step.before;
  for (let k = 0; k < step.idx.length; k++) {
    cur[step.idx[k]] = vals[k];
    state.shadow[step.idx[k]] = vals[k];
  }
  nv.refreshDrawing(true);
}

// While a request runs, the drawing must not change under it (a save would mark later paint
// as saved; a server edit replaces the drawing): say so instead of ignoring the click.
function drawingLocked() {
  if (!state.busy || state.busyPaint) return false;
  busyNotice();
  return true;
}

function busyNotice() {
  const text = `busy: waiting for the ${state.busyWhat || 'previous action'}… (click again when it is done)`;
  message(text, 'err');
  setStatus(text);
}

function undo() {
  if (drawingLocked()) return;
  const s = state.undo.pop();
  if (!s) return;
  applyDiff(s, false);
  state.redo.push(s);
  // Undo of a step that set the drawing aside ("Load vN only", a restore): the drawing is again
  // the one kept under the key before, which this tab then keeps up to date again (Redo: it is
  // kept as it was).
  if (s.parks) switchDraftKey(s.parks, true);
  markDirty(`undo ${s.label}`);
}

function redo() {
  if (drawingLocked()) return;
  const s = state.redo.pop();
  if (!s) return;
  applyDiff(s, true);
  state.undo.push(s);
  if (s.parks) switchDraftKey(s.parks, false);
  markDirty(`redo ${s.label}`);
}

function updateButtons() {
  const editing = state.editId !== null;
  $('btn-undo').disabled = !state.undo.length;
  $('btn-redo').disabled = !state.redo.length;
  $('btn-undo').textContent = `Undo (${state.undo.length})`;
  $('btn-redo').textContent = `Redo (${state.redo.length})`;
  for (const id of ['btn-margin', 'btn-bool', 'btn-smooth', 'btn-islands', 'btn-interp', 'btn-rename', 'btn-delete', 'btn-history'])
    $(id).disabled = !editing;
  $('btn-save').disabled = !state.dirty;
  $('btn-save').textContent = state.dirty ? 'Save*' : 'Save';
}

async function startEdit(id) {
  if (state.editId === id) return;
  if (state.dirty) await save();
  const s = structureById(id);
  const prev = state.editId;
  const img = await loadImage(`/api/structures/${id}/mask.nii?version=${s.version}`, `${id}.nii`);
  if (!nv.loadDrawing(img)) throw new Error('the mask does not match the CT grid');
  state.editId = id;
  state.editBase = s.version;
  state.draftReplaces = null;  // (those of the structure before: its drawing was saved or is unchanged)
  state.shadow = drawing().slice();
  state.undo = [];
  state.redo = [];
  state.dirty = false;
  state.pendingActions = [];
  // NiiVue's default drawing colours: value 1 is red.
  nv.setDrawOpacity(state.visible.get(id) === false ? 0 : EDIT_FILL_ALPHA);
  if (prev !== null) setOpacityFor(prev);
  applyVisibility(id);
  applyTool();
  renderStructures();
  updateButtons();
  message(`editing ${s.name} (version ${s.version})`);
}

async function reloadDrawingFromServer(label) {
  const s = structureById(state.editId);
  const img = await loadImage(`/api/structures/${s.id}/mask.nii?version=${s.version}`, `${s.id}.nii`);
  const before = drawing();
  nv.loadDrawing(img);
  // loadDrawing replaced the bitmap: diff the new content against the shadow.
  recordStep(label);
  state.dirty = false;
  state.pendingActions = [];
  void before;
  updateButtons();
}

async function save() {
  if (!state.editId || !state.dirty) return;
  const s = structureById(state.editId);
  requireReviewer('save', `; your drawing of ${s.name} is kept`);
  const bytes = await nv.saveImage({ filename: '', isSaveDrawing: true });
  if (!(bytes instanceof Uint8Array)) throw new Error('could not export the drawing');
  const savedSeq = state.draftSeq;  // the change the bytes hold
  const action = state.pendingActions.length ? state.pendingActions.join(', ').slice(0, 200) : 'edit';
  state.busyWhat = 'save';
  setStatus('saving…');
  // A draft request still on its way must not land after the save (the server clears the
  // draft with the save). The save clears this tab's draft, and those its drawing was restored
  // from; the drafts of other tabs and windows (and those this tab set aside) stay. One sent
  // while the save is on its way (the page hidden or left) is not written: the save names the
  // change it holds (`seq`).
  clearTimeout(state.draftTimer);
  await state.draftChain;
  await state.draftLeaving;  // (one sent when the page was hidden: it must not land after the save either)
  const key = state.draftKey, replaced = replacesOf(s.id);
  try {
    const r = await api('PUT', `/api/structures/${s.id}/mask?base_version=${state.editBase}&action=${encodeURIComponent(action)}` +
      `${draftQuery(key, replaced)}&seq=${savedSeq}`, undefined, { binary: bytes, what: `save ${s.name}` });
    state.editBase = r.version;
    state.dirty = false;
    state.pendingActions = [];
    const me = reviewer();
    forgetDraft(s.id, me, key);  // the server cleared them with the save (not one written since)
    forgetUnsent(s.id, key, savedSeq);
    forgetReplaced(s.id, me, replaced);
    state.draftReplaces = null;
    const others = state.drafts.filter((d) => d.structure_id === s.id && d.reviewer === me).length;
    message(`saved ${r.name} as version ${r.version}` +
            (others ? `; ${others === 1 ? 'another unsaved drawing' : `${others} other unsaved drawings`} of yours of ${r.name} ` +
                      `${others === 1 ? 'is' : 'are'} still kept as ${others === 1 ? 'a draft' : 'drafts'} (Restore or Discard, over the viewer)` : ''), 'ok');
    await afterChange();
  } catch (e) {
    if (e.status === 409) {
      message(`CONFLICT: ${e.message}`, 'err');
      setStatus('conflict: choose what to do in the dialog');
      // Never a dead end, and nothing is lost whatever the choice; Enter (the focused button)
      // merges, Escape decides later: neither drops anything.
      const latest = e.body && e.body.latest_version;
      // What a save over it would drop from the live structure: every version saved since ours.
      const mw = (e.body && e.body.meanwhile) || [];
      const what = mw.length ? mw.map((v) => `v${v.version} by ${v.author} (${v.action})`).join(', ') : `version ${latest}`;
      if (!Number.isInteger(latest)) throw e;
      const choice = await askConflict(
        `${s.name} was changed by someone else while you were drawing on version ${state.editBase}:\n` +
        (mw.length ? mw.map((v) => `  v${v.version} ${v.time} ${v.author}: ${v.action}`).join('\n') : `  version ${latest}`) +
        '\n\nYour drawing is not saved yet. Nothing is lost whichever you choose.',
        { merge: `Merge (Enter): load v${latest} and re-apply your changes on it; then check and Save`,
          theirs: `Load v${latest} only: ${theirsKeeps(s.id)}`,
          mine: `Save your drawing over v${latest}: drops ${what} from the live ${s.name} (kept in the History, restorable)`,
          later: 'Decide later (Esc): keep your drawing unsaved, change nothing' });
      return resolveConflict(s, choice, latest, mw);
    }
    throw e;
  }
}

// The conflict dialog (index.html #conflict): `choices` maps merge/theirs/mine/later to a
// button's text (null: not offered). Resolves to the choice; Escape is "later". The merge
// button has the focus, so Enter never saves over a colleague's version. (Tests read
// window.app.conflictDialog while it is open.)
function askConflict(text, choices) {
  const dlg = $('conflict');
  $('conflict-text').textContent = text;
  for (const b of dlg.querySelectorAll('[data-choice]')) {
    const label = choices[b.dataset.choice];
    b.hidden = !label;
    b.textContent = label || '';
  }
  window.app.conflictDialog = { text, choices };
  return new Promise((resolve) => {
    const done = (c) => {
      dlg.removeEventListener('cancel', onCancel);
      for (const b of dlg.querySelectorAll('[data-choice]')) b.onclick = null;
      if (dlg.open) dlg.close();
      window.app.conflictDialog = null;
      resolve(c);
    };
    const onCancel = (e) => { e.preventDefault(); done('later'); };
    dlg.addEventListener('cancel', onCancel);
    for (const b of dlg.querySelectorAll('[data-choice]')) b.onclick = () => done(b.dataset.choice);
    dlg.showModal();
    $('cf-merge').focus();
  });
}

// What the conflict dialog's choice does with the structure being edited (s), whose newer
// version `latest` (saved meanwhile: `mw`) was found on a save or a reload. The reviewer's
// drawing survives every choice: merged into the drawing, under Undo, saved, or kept as it is.
// Returns only when the structure was saved; otherwise throws, so that whatever called the save
// (a switch of structure, a margin) stops with the drawing in front of the reviewer.
async function resolveConflict(s, choice, latest, mw) {
  const who = mw.length ? mw.map((v) => `${v.author}: ${v.action}`).join(', ') : `v${latest}`;
  if (choice === 'mine') {
    await refreshStructures();
    state.editBase = latest;
    return save();
  }
  if (choice === 'later') {
    renderNotice();
    throw new Error(`conflict: ${s.name} not saved, your drawing is kept (on version ${state.editBase}); ` +
                    `Save again to choose, or reload ${s.name} from the notice`);
  }
  if (choice === 'theirs') {
    const kept = await keepDrawingAsDraft(s);  // before the drawing is replaced
    await refreshStructures();
    await loadTheirs(s, `load v${latest} (${who})`, kept);
    await afterChange();
    throw new Error(`conflict: ${s.name}: showing v${state.editBase} (${who}), not your drawing; ` +
                    (kept ? 'your drawing is kept as a draft (Restore, over the viewer) and one Undo away' : 'it is one Undo away'));
  }
  await refreshStructures();
  const n = await mergeIntoLatest(s, latest, `merge into v${latest} (${who})`);
  await syncOverlays();
  renderStructures();
  updateButtons();
  message(`${s.name}: v${latest} (${who}) loaded with your ${n} changed voxels re-applied; not saved yet`, 'ok');
  throw new Error(`conflict: ${s.name} merged (v${latest} + your drawing), not saved yet: check it, then Save ` +
                  '(Undo: your drawing alone)');
}
window.app.askConflict = askConflict;

// Loads version `latest` of the structure being edited into the drawing with every voxel this
// tab changed since its base version set as this tab has it (a three-way merge of a binary
// mask: nothing of either side is dropped where the other did not change it). One undoable
// step; the base becomes `latest`; the drawing stays unsaved. Returns the number of voxels
// re-applied. Both masks are fetched before the drawing is touched.
async function mergeIntoLatest(s, latest, label) {
  const url = (v) => `/api/structures/${s.id}/mask.nii?version=${v}`;
  const [baseImg, theirImg] = [await loadImage(url(state.editBase), `${s.id}.nii`), await loadImage(url(latest), `${s.id}.nii`)];
  const mine = drawing().slice();
  let n = 0;
  try {
    if (!nv.loadDrawing(baseImg)) throw new Error('the mask does not match the CT grid');
    const base = drawing().slice();
    if (!nv.loadDrawing(theirImg)) throw new Error('the mask does not match the CT grid');
    const cur = drawing();
    for (let i = 0; i < cur.length; i++) if (mine[i] !== base[i]) { cur[i] = mine[i]; n++; }
  } catch (err) {
    if (drawing() && drawing().length === mine.length) drawing().set(mine);
    nv.refreshDrawing(true);
    throw err;
  }
  nv.refreshDrawing(true);
  recordStep(label);
  state.editBase = latest;
  return n;
}

async function afterChange() {
  await refreshStructures();
  const s = structureById(state.editId);
  if (s) state.editBase = s.version;
  await syncOverlays();
  updateButtons();
  await refreshDvh();
  setStatus('ready');
}

async function serverEdit(body, label) {
  if (!state.editId) return;
  if (state.dirty) await save();
  const s = structureById(state.editId);
  state.busyWhat = label;
  setStatus(`${label}…`);
  const r = await api('POST', `/api/structures/${s.id}/edit`, { base_version: state.editBase, ...body });
  state.editBase = r.version;
  await refreshStructures();
  await reloadDrawingFromServer(r.action);
  message(`${r.name}: ${r.action} -> version ${r.version} (${r.volume_cc.toFixed(1)} cc)`, 'ok');
  await syncOverlays();
  await refreshDvh();
  setStatus('ready');
}

// Tools ------------------------------------------------------------------------------

function voxelSizeMm() {
  const b = nv.back;
  return b && b.pixDimsRAS ? [b.pixDimsRAS[1], b.pixDimsRAS[2], b.pixDimsRAS[3]] : [1, 1, 1];
}

function applyTool() {
  const t = state.tool;
  document.querySelectorAll('[data-tool]').forEach((b) => {
    b.classList.toggle('on', b.dataset.tool === t);
    b.setAttribute('aria-pressed', String(b.dataset.tool === t));
  });
  const sphere = $('brush-3d').checked;
  const mm = Math.max(0.5, Number($('brush-mm').value) || 1);
  const vs = voxelSizeMm();
  nv.opts.penSize = Math.max(1, Math.round(mm / Math.min(vs[0], vs[1])));
  const paint = state.editId !== null && (t === 'brush' || t === 'eraser') && !sphere && (!state.busy || state.busyPaint);
  nv.setDrawingEnabled(paint);
  if (paint) nv.setPenValue(t === 'brush' ? 1 : 0, false);
}

function paintSphere() {
  const cur = drawing();
  const b = nv.back;
  if (!cur || !b) return;
  const dims = [b.dimsRAS[1], b.dimsRAS[2], b.dimsRAS[3]];
  const vs = voxelSizeMm();
  const frac = nv.scene.crosshairPos;
  const c = [0, 1, 2].map((a) => Math.round(frac[a] * dims[a] - 0.5));
  const r = Math.max(0.5, Number($('brush-mm').value) || 1) / 2;
  const v = state.tool === 'brush' ? 1 : 0;
  const ext = [0, 1, 2].map((a) => Math.ceil(r / vs[a]));
  for (let z = Math.max(0, c[2] - ext[2]); z <= Math.min(dims[2] - 1, c[2] + ext[2]); z++)
    for (let y = Math.max(0, c[1] - ext[1]); y <= Math.min(dims[1] - 1, c[1] + ext[1]); y++)
      for (let x = Math.max(0, c[0] - ext[0]); x <= Math.min(dims[0] - 1, c[0] + ext[0]); x++) {
        const dx = (x - c[0]) * vs[0], dy = (y - c[1]) * vs[1], dz = (z - c[2]) * vs[2];
        if (dx * dx + dy * dy + dz * dz <= r * r) cur[x + dims[0] * (y + dims[1] * z)] = v;
      }
  nv.refreshDrawing(true);
}

function ctRAS() {
  if (!state.ctRAS) {
    const b = nv.back;
    const [data] = b.getVolumeData([0, 0, 0], [b.dimsRAS[1] - 1, b.dimsRAS[2] - 1, b.dimsRAS[3] - 1], 'scaled');
    state.ctRAS = data;
  }
  return state.ctRAS;
}

// Threshold-limited brush: newly painted voxels outside [lo, hi] HU are taken back.
function clipToThreshold() {
  if (!$('thr-on').checked || state.tool !== 'brush') return 0;
  const lo = Number($('thr-lo').value), hi = Number($('thr-hi').value);
  const cur = drawing(), sh = state.shadow, hu = ctRAS();
  let n = 0;
  for (let i = 0; i < cur.length; i++) {
    if (cur[i] !== sh[i] && cur[i] > 0 && sh[i] === 0 && (hu[i] < lo || hu[i] > hi)) {
      cur[i] = 0;
      n++;
    }
  }
  if (n) nv.refreshDrawing(true);
  return n;
}

function endStroke() {
  if (!state.editId) return;
  const sphere = $('brush-3d').checked;
  clipToThreshold();
  const label = `${state.tool === 'brush' ? 'brush' : 'eraser'}${sphere ? ' 3D' : ''} ${$('brush-mm').value} mm` +
    ($('thr-on').checked && state.tool === 'brush' ? ` HU ${$('thr-lo').value}..${$('thr-hi').value}` : '');
  recordStep(label);
}

// ---------------------------------------------------------------------------------------
// Dose and DVH

// commit=false: the caller commits the volume list (one re-blend of all layers instead of
// several: each costs seconds on a 512-slice case in software WebGL).
async function loadDose(commit = true) {
  const d = state.info.dose;
  if (!d) {
    $('dose-info').textContent = 'no dose in this case';
    $('dose-bar').hidden = true;
    $('dose-wash').disabled = true;
    $('dose-iso').disabled = true;
    return;
  }
  for (const v of [state.dose, state.isodose]) if (v) nv.volumes.splice(nv.volumes.indexOf(v), 1);
  $('dose-wash').disabled = false;
  $('dose-iso').disabled = false;
  const img = await loadImage(`${d.url}?g=${d.generation}`, d.name);
  // Colourwash: the server's colour stops (core/include/isoline/core/dose_style.h: the isodose
  // colours at their levels, none near a structure colour), in % of the prescription; from
  // the first stop (10 %) up, the last stop's colour above it.
  const wash = d.wash, rx = d.prescription_gy;
  const lo = wash[0].fraction, hi = wash[wash.length - 1].fraction;
  nv.addColormap('isoline-dose', {
    R: wash.map((w) => w.color[0]), G: wash.map((w) => w.color[1]), B: wash.map((w) => w.color[2]),
    A: wash.map((w, i) => Math.round(128 * i / (wash.length - 1))),  // as NiiVue's jet: 0 .. 128
    I: wash.map((w) => Math.round(255 * (w.fraction - lo) / (hi - lo))),
  });
  img.colormap = 'isoline-dose';
  img.cal_min = lo * rx;
  img.cal_max = hi * rx;
  img.opacity = $('dose-wash').checked ? 0.3 : 0;
  nv.volumes.splice(1, 0, img);
  state.dose = img;
  const r = await fetch(`${d.isodose_url}?g=${d.generation}`, { headers: { 'X-Isoline-Token': token } });
  const levels = JSON.parse(r.headers.get('X-Isodose-Levels-Gy') || '[]');
  const iso = await NVImage.new(await r.arrayBuffer(), 'isodose.nii');
  const cols = [[0, 0, 0], ...d.isodose_lines.map((l) => l.color)];
  const n = d.isodose_lines.length;
  window.app.isodoseDash = dashIsodose(iso, n);
  // labels 1..n: the dashes, opaque; n+1..2n: the gaps, the same colour faint (nothing of a
  // line, not even a one-voxel hot spot, disappears)
  iso.setColormapLabel({ R: [...cols, ...cols.slice(1)].map((c) => c[0]), G: [...cols, ...cols.slice(1)].map((c) => c[1]),
                         B: [...cols, ...cols.slice(1)].map((c) => c[2]),
                         A: [0, ...Array(n).fill(255), ...Array(n).fill(ISODOSE_GAP_ALPHA)], I: [...Array(2 * n + 1).keys()],
                         labels: ['', ...levels.map((g) => `${g.toFixed(1)} Gy`), ...levels.map((g) => `${g.toFixed(1)} Gy`)] });
  iso.opacity = $('dose-iso').checked ? 1 : 0;
  nv.volumes.splice(2, 0, iso);
  state.isodose = iso;
  // keep the drawing-free overlays above the dose
  if (commit) commitVolumes();
  window.app.isodoseColours = cols.slice(1);
  // Legend: the prescription the percentages refer to; each isodose line (a dashed sample in
  // its colour) with its percentage and dose; the colour bar of the colourwash in Gy.
  $('dose-info').innerHTML = `<div>prescription <b>${rx.toFixed(1)} Gy</b> · max ${d.max_gy.toFixed(1)} Gy</div>` +
    `<div class="legend-title">Isodose lines (dashed), % of ${rx.toFixed(1)} Gy:</div><div class="iso-legend">` +
    levels.map((g, i) => `<span class="iso" data-colour="${cols[i + 1].join(',')}">` +
                         `<span class="iso-line" style="border-top-color:rgb(${cols[i + 1].join(',')})"></span>` +
                         `${Math.round(100 * d.isodose_lines[i].fraction)} % = ${g.toFixed(1)} Gy</span>`).join('') + '</div>' +
    `<div class="legend-title">Colourwash, Gy (from ${Math.round(100 * wash[0].fraction)} % of ${rx.toFixed(1)} Gy):</div>`;
  drawDoseBar(d);
}

// Isodose lines are drawn dashed, so that no isodose line reads as a structure's outline
// (solid) whatever the colours: the line voxels of the server's volume (value = line 1..n)
// in every other cell of a 3-D checkerboard of about ISODOSE_DASH_MM become gaps (n+1..2n,
// drawn faint). Every view through the volume cuts the checkerboard into squares, so a line
// in any view alternates dash and gap. Returns the counts (for the tests).
const ISODOSE_DASH_MM = 8;
const ISODOSE_GAP_ALPHA = 70;
function dashIsodose(img, n) {
  const dims = [img.hdr.dims[1], img.hdr.dims[2], img.hdr.dims[3]];
  const cell = [1, 2, 3].map((a) => Math.max(2, Math.round(ISODOSE_DASH_MM / Math.abs(img.hdr.pixDims[a] || 1))));
  const v = img.img;
  let dash = 0, gap = 0;
  for (let z = 0, i = 0; z < dims[2]; z++) {
    const cz = Math.floor(z / cell[2]);
    for (let y = 0; y < dims[1]; y++) {
      const cyz = cz + Math.floor(y / cell[1]);
      for (let x = 0; x < dims[0]; x++, i++) {
        if (!v[i]) continue;
        if ((cyz + Math.floor(x / cell[0])) & 1) { v[i] += n; gap++; } else dash++;
      }
    }
  }
  return { dash, gap, cell };
}

// The colourwash's colour bar: the dose in Gy from 0 to the maximum (at least 105 % of the
// prescription), in the wash's colours (the server's stops, interpolated as the viewer does;
// nothing below the first stop, the last stop's colour above it); round Gy ticks under it,
// a mark in each isodose line's colour at its level over it.
function washColour(wash, f) {
  if (f < wash[0].fraction) return null;
  for (let i = 1; i < wash.length; i++) {
    if (f > wash[i].fraction) continue;
    const a = wash[i - 1], b = wash[i], t = (f - a.fraction) / (b.fraction - a.fraction);
    return a.color.map((c, k) => Math.round(c + t * (b.color[k] - c)));
  }
  return wash[wash.length - 1].color;
}

function drawDoseBar(d) {
  const c = $('dose-bar');
  c.hidden = false;
  const g = c.getContext('2d');
  const W = c.width, H = c.height, L = 8, R = W - 26, top = 8, bh = 14;
  const rx = d.prescription_gy, wash = d.wash;
  const step = niceStep(Math.max(d.max_gy, 1.05 * rx) / 5);
  const gmax = Math.ceil(Math.max(d.max_gy, 1.05 * rx) / step - 1e-9) * step;
  const xOf = (gy) => L + (gy / gmax) * (R - L);
  g.clearRect(0, 0, W, H);
  for (let x = L; x < R; x++) {
    const col = washColour(wash, ((x + 0.5 - L) / (R - L)) * gmax / rx);
    g.fillStyle = col ? `rgb(${col.join(',')})` : '#111';
    g.fillRect(x, top, 1, bh);
  }
  g.strokeStyle = '#888';
  g.strokeRect(L - 0.5, top - 0.5, R - L + 1, bh + 1);
  // isodose levels: a mark over the bar in the line's colour
  const marks = d.isodose_lines.map((l) => ({ gy: l.fraction * rx, x: xOf(l.fraction * rx), color: l.color }));
  for (const m of marks) {
    g.fillStyle = `rgb(${m.color.join(',')})`;
    g.beginPath();
    g.moveTo(m.x, top - 1);
    g.lineTo(m.x - 4, top - 8);
    g.lineTo(m.x + 4, top - 8);
    g.closePath();
    g.fill();
  }
  g.fillStyle = '#bbb';
  g.font = '10px sans-serif';
  g.textAlign = 'center';
  const ticks = [];
  for (let v = 0; v <= gmax + 1e-9; v += step) {
    const x = xOf(v);
    ticks.push(Number(v.toFixed(6)));
    g.fillRect(Math.round(x), top + bh, 1, 3);
    g.fillText(`${Number(v.toFixed(6))}`, x, top + bh + 13);
  }
  g.textAlign = 'right';
  g.fillText('Gy', W - 1, top + bh + 13);
  g.textAlign = 'left';
  window.app.doseBar = { x0: L, x1: R, top, height: bh, gmax, ticks, marks, width: W };
}

// A round axis step at or above `raw`: 1, 2 or 5 x 10^n.
function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw - 1e-12) return m * p;
  return 10 * p;
}

async function refreshDvh() {
  const c = $('dvh');
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  $('dvh-table').hidden = !(state.info && state.info.dose);
  if (!state.info || !state.info.dose) {
    g.fillStyle = '#888';
    g.fillText('DVH: no dose', 10, 20);
    return;
  }
  const d = await api('GET', '/api/dvh');
  const L = 34, B = 30, R = 12, W = c.width - L - R, H = c.height - B - 6;
  g.strokeStyle = '#666';
  g.strokeRect(L, 6, W, H);
  g.fillStyle = '#aaa';
  g.font = '10px sans-serif';
  g.textAlign = 'left';
  for (let i = 0; i <= 4; i++) g.fillText(`${i * 25}%`, 4, 6 + H - (i / 4) * H + 3);
  // Dose axis: round ticks (a step of 1, 2 or 5 x 10^n Gy, 4 to 8 of them) up to the first
  // tick at or above the maximum dose; its title under the tick labels, not over the last one.
  const step = niceStep(d.max_gy / 5);
  const xmax = Math.max(step, Math.ceil(d.max_gy / step - 1e-9) * step);
  const ticks = [];
  for (let v = 0; v <= xmax + 1e-9; v += step) ticks.push(Number(v.toFixed(6)));
  const boxes = [];
  g.textAlign = 'center';
  for (const v of ticks) {
    const x = L + (v / xmax) * W, text = `${v}`;
    g.fillText(text, x, c.height - 16);
    const w = g.measureText(text).width;
    boxes.push({ text, x0: x - w / 2, x1: x + w / 2, y0: c.height - 26, y1: c.height - 16 });
  }
  const title = 'dose (Gy)', tw = g.measureText(title).width;
  g.fillText(title, L + W / 2, c.height - 3);
  g.textAlign = 'left';
  window.app.dvhAxis = { ticks, step, xmax, boxes,
                         title: { text: title, x0: L + W / 2 - tw / 2, x1: L + W / 2 + tw / 2, y0: c.height - 13, y1: c.height - 3 } };
  for (const cv of d.curves || []) {
    g.strokeStyle = `rgb(${cv.color.join(',')})`;
    g.beginPath();
    cv.dose_gy.forEach((x, i) => {
      const px = L + (x / xmax) * W, py = 6 + H - cv.fraction[i] * H;
      if (i === 0) g.moveTo(px, py); else g.lineTo(px, py);
    });
    g.stroke();
  }
  // Which curve is which, and the numbers the oncologist reads off (the same as `isoline dvh`).
  const fmt = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
  $('dvh-table').querySelector('tbody').innerHTML = (d.curves || []).map((cv) =>
    `<tr data-name="${escapeHtml(cv.name)}"><td><span class="swatch" style="background:rgb(${cv.color.join(',')})"></span> ` +
    `${escapeHtml(cv.name)}</td><td>${fmt(cv.mean_gy)}</td><td>${fmt(cv.d95_gy)}</td><td>${fmt(cv.d2_gy)}</td>` +
    `<td>${fmt(cv.max_gy)}</td></tr>`).join('');
  window.app.dvh = d;
}

// Progress of the last re-estimation as the client showed it (for the tests):
// window.app.doseJob = {job, shown: [{fraction, stage, detail}], generation before/after}.
async function reestimateDose() {
  const p = $('dose-progress');
  try {
    if (state.dirty) await save();  // plan for what the reviewer sees
    state.busyWhat = 'dose re-estimation';
    const r = await api('POST', '/api/dose/estimate', {}, { anonymous: true });  // (no version: no author needed)
    state.busyPaint = true;  // the plan runs on the saved structures: painting meanwhile is safe
    applyTool();
    const job = { job: r.job, shown: [], before: state.info.dose ? state.info.dose.generation : null };
    window.app.doseJob = job;
    p.hidden = false;
    p.value = 0;
    setStatus('dose: planning…');
    for (let wait = 100; ; wait = Math.min(500, wait * 2)) {
      await new Promise((res) => setTimeout(res, wait));
      const j = await api('GET', `/api/jobs/${r.job}`);
      p.value = j.fraction;
      const text = `dose ${Math.round(j.fraction * 100)}%${j.stage ? ` ${j.stage}` : ''}${j.detail ? `: ${j.detail}` : ''}`;
      setStatus(text);
      p.title = text;
      job.shown.push({ fraction: j.fraction, stage: j.stage, detail: j.detail, visible: !p.hidden });
      if (j.state === 'failed') throw new Error(`re-estimate dose: ${j.error}`);
      if (j.state === 'done') break;
    }
    state.info = await api('GET', '/api/case');
    job.after = state.info.dose ? state.info.dose.generation : null;
    await loadDose();
    await refreshDvh();
    const d = state.info.dose;
    message(`dose re-estimated (max ${d ? d.max_gy.toFixed(1) : '?'} Gy)`, 'ok');
    setStatus('ready');
  } finally {
    p.hidden = true;
    state.busyPaint = false;
  }
}

// ---------------------------------------------------------------------------------------
// Approval, history, structure management

async function approve() {
  // The approval records who approved: the name typed in the Reviewer box, never a default.
  requireReviewer('approve');
  const live = state.structures.length;
  const flagged = flaggedStructures();
  const reviewedN = state.structures.filter((s) => (s.flags || []).length).length - flagged.length;
  const flagText = flagged.length
    ? `\n\n⚑ ${flagged.length} structure${flagged.length === 1 ? ' has' : 's have'} quality flags still unchecked:\n` +
      flagged.map((s) => `  ${s.name}: ${s.flags.join('; ')}`).join('\n') +
      '\n(the approval record lists them as unchecked)'
    : (reviewedN ? `\n\nQuality flags: all ${reviewedN} reviewed (checked, or contour edited).` : '');
  // Unsaved drawings kept as drafts are not approved, and not dropped: the confirmation names
  // them (this tab's own unsaved drawing is saved first, so it is approved).
  await refreshDrafts();
  const own = state.dirty ? state.editId : null;
  const drafts = state.drafts.filter((d) => !(state.dirty && (isLiveDraft(d) || replacedBy(d))));
  const draftText = (drafts.length
    ? `\n\n✎ ${drafts.length} unsaved drawing${drafts.length === 1 ? '' : 's'} kept as draft${drafts.length === 1 ? '' : 's'} ` +
      '(not saved, so NOT part of this approval; kept after it):\n' +
      drafts.map((d) => `  ${d.name}: ${d.reviewer === reviewer() ? `yours (${draftWhere(d)})` : d.reviewer}, ` +
                        `drawn on v${d.base_version}, ${draftWhen(d)}`).join('\n') +
      '\n(to approve a drawing: Restore it, Save, then Approve)' : '') +
    (own !== null ? `\n\nYour unsaved drawing of ${structureById(own).name} is saved first (a new version) and approved.` : '');
  if (!window.confirm(`Approve ${live} structure${live === 1 ? '' : 's'} as "${reviewer()}"?\n` +
                      `This writes the approved RT-STRUCT for the planning system.${flagText}${draftText}`)) return;
  if (state.dirty) await save();
  const versions = {};
  for (const s of state.structures) versions[s.id] = s.version;
  state.busyWhat = 'approval';
  setStatus('approving…');
  let r;
  try {
    r = await api('POST', '/api/approve', { reviewer: reviewer(), versions }, { timeoutMs: Math.max(300000, window.app.timeoutMs), what: 'approve' });
  } catch (e) {
    // Refused (409: changed meanwhile) or failed: the header says so, not "approving…".
    const why = String(e.message || e).replace(/^approve: /, '');
    const err = new Error(`${e.status === 409 ? 'approval refused' : 'approval failed'}: ${why}`);
    err.status = e.status;
    throw err;
  }
  window.app.lastApproval = r;
  const edited = r.structures.filter((s) => !s.deleted && s.edited).map((s) => s.name);
  message(`approved by ${r.reviewer}: ${r.rtstruct} (edited: ${edited.join(', ') || 'none'})`, 'ok');
  const kept = r.unsaved_drafts || [];
  if (kept.length)
    message(`not approved, kept as drafts: unsaved drawings of ${kept.map((d) => `${d.name} (${d.reviewer}, drawn on v${d.base_version})`).join(', ')}`, 'err');
  // What the physicist will see differently (names cut to the 16 characters of a TPS ID, ...).
  for (const w of r.rtstruct_warnings || []) message(`RT-STRUCT: ${w}`, 'err');
  setStatus('approved');
}

async function showHistory() {
  if (!state.editId) return;
  const list = await api('GET', `/api/history?structure=${state.editId}`);
  const checks = await api('GET', `/api/flag_checks?structure=${state.editId}`);
  const h = $('history');
  h.dataset.id = String(state.editId);
  h.innerHTML = '<b>History</b>';
  // versions and quality-flag checks, newest first (a check sorts after the version it saw)
  const rows = [...list.map((v) => ({ v, t: v.time, k: 0 })), ...checks.map((c) => ({ c, t: c.time, k: 1 }))]
    .sort((a, b) => (a.t < b.t ? 1 : a.t > b.t ? -1 : b.k - a.k));
  for (const { v, c } of rows) {
    const d = document.createElement('div');
    if (c) {
      d.className = 'flag-checked-row';
      d.textContent = `${c.time} ${c.author}: quality flags ${c.checked ? 'checked' : 'unchecked'} (v${c.version}: ${c.flags})`;
      h.appendChild(d);
      continue;
    }
    d.textContent = `v${v.version} ${v.time} ${v.author}: ${v.action} (${v.volume_cc.toFixed(1)} cc)`;
    if (v.version !== state.editBase && !v.deleted) {
      const b = document.createElement('button');
      b.textContent = 'restore';
      b.addEventListener('click', () => guard(async () => {
        if (state.dirty) await save();
        const r = await api('POST', `/api/structures/${state.editId}/revert`, { base_version: state.editBase, version: v.version });
        state.editBase = r.version;
        await refreshStructures();
        await reloadDrawingFromServer(`restore v${v.version}`);
        await syncOverlays();
        await showHistory();
      }));
      d.appendChild(b);
    }
    h.appendChild(d);
  }
}

async function createStructure() {
  const name = $('new-name').value.trim();
  if (!name) throw new Error('type a name for the new structure');
  const r = await api('POST', '/api/structures', { name });
  await refreshStructures();
  await syncOverlays();
  await startEdit(r.id);
  message(`created ${r.name}`, 'ok');
}

async function renameStructure() {
  const name = $('new-name').value.trim();
  if (!name || !state.editId) throw new Error('select a structure and type the new name in the box');
  if (state.dirty) await save();
  const r = await api('POST', `/api/structures/${state.editId}/rename`, { base_version: state.editBase, name });
  state.editBase = r.version;
  message(`renamed to ${r.name}`, 'ok');
  await afterChange();
}

// Deleting the structure being drawn on: an unsaved drawing of it is not dropped with it. The
// confirmation says so; the drawing goes to the server as a draft first (if that fails nothing
// is deleted) and is offered over the viewer (restore the structure to use it, or Discard it).
async function deleteStructure() {
  const s = structureById(state.editId);
  if (!s) return;
  const unsaved = state.dirty;
  if (unsaved) requireReviewer('delete', `; your drawing of ${s.name} is kept`);
  if (!confirm(`Delete ${s.name}? (its history is kept: Deleted, restore brings it back)` +
               (unsaved ? `\n\nYour drawing of ${s.name} is NOT saved. It is not deleted with it: it is kept as an ` +
                          `unsaved drawing (draft), offered over the viewer (restore ${s.name} to use it, or Discard ` +
                          'it there). To keep it in the history instead, Cancel and Save first.' : ''))) return;
  if (unsaved && !(await keepDrawingAsDraft(s)))
    throw new Error(`${s.name} not deleted: your unsaved drawing of it could not be kept as a draft; Save it first`);
  await api('DELETE', `/api/structures/${s.id}`, { base_version: state.editBase });
  clearTimeout(state.draftTimer);
  if (unsaved) state.draftKey = newDraftKey();  // the kept drawing is set aside: this tab never writes over it
  nv.closeDrawing();
  state.editId = null;
  state.dirty = false;
  state.undo = [];
  state.redo = [];
  state.draftReplaces = null;
  message(`deleted ${s.name}` + (unsaved ? `; your unsaved drawing of ${s.name} is kept as a draft (over the viewer: ` +
                                           `restore ${s.name} to use it, or Discard it)` : ''), 'ok');
  await afterChange();
}

// ---------------------------------------------------------------------------------------
// Drafts. While the structure being edited has unsaved changes, the drawing goes to the server
// as a draft (PUT .../draft: the mask, the version it was drawn on, the pending action text;
// one per structure, reviewer and tab, so that two tabs or windows of the same reviewer on the
// same structure each keep their own): about 2 s after the last change, right before "Load vN
// only" replaces it, before the structure is deleted, and when the page is hidden or left
// (keepalive). A closed or crashed tab therefore loses nothing: on the next open the drafts
// are offered (Restore / Discard). A save clears this tab's draft of the structure only.
// The key a tab's drawing is kept under changes when the drawing is set aside ("Load vN only",
// a delete, a restore over it): the set-aside drawing stays as it is, offered like the others.
// A drawing restored from a draft of this reviewer takes that draft's place: its first put (or
// its save) removes that draft in the same transaction (`replaces`).

const fmtTime = (t) => String(t || '').replace('T', ' ').replace(/(:\d\d)?Z$/, ' UTC');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// When a draft was last written, in local time: "14:02" today, else "27 Nov 14:02".
function draftWhen(d) {
  const t = new Date(d.time);
  if (Number.isNaN(t.getTime())) return fmtTime(d.time);
  const now = new Date(), hm = `${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}`;
  if (t.toDateString() === now.toDateString()) return hm;
  return `${t.getDate()} ${MONTHS[t.getMonth()]}${t.getFullYear() === now.getFullYear() ? '' : ` ${t.getFullYear()}`} ${hm}`;
}

// Where a draft of this reviewer was drawn: this page, this tab before a reload, or another tab,
// window or computer (or a page closed before).
function draftWhere(d) {
  const tab = String(d.tab || '');
  // (a page of an earlier version of this client names no tab, and an older server kept one
  // draft per structure and reviewer: neither says which window)
  if (!tab) return 'a window opened before an update';
  if (tab.startsWith(`${draftTab}-`)) return 'this window';
  if (earlierTabs.some((t) => tab.startsWith(`${t}-`))) return 'this window, before a reload';
  return 'another window';
}

// The draft that is this tab's drawing now (the structure being edited, under this tab's key).
function isLiveDraft(d) {
  return d.reviewer === reviewer() && d.structure_id === state.editId && d.tab === state.draftKey;
}
// An own draft that this tab's drawing was restored from (removed once the drawing is kept),
// as it was read: one written since (its window, still open, drew on) is not replaced, and is
// offered again.
const supersedes = (ref, d) => ref.tab === d.tab && (Number(d.seq) || 0) <= ref.seq;
function replacedBy(d) {
  const r = state.draftReplaces;
  return !!r && d.reviewer === reviewer() && d.structure_id === r.id && r.refs.some((x) => supersedes(x, d));
}
function replacesOf(id) {
  const r = state.draftReplaces;
  return r && r.id === id ? r.refs.slice() : [];
}
function addReplaces(id, tab, seq) {
  if (!state.draftReplaces || state.draftReplaces.id !== id) state.draftReplaces = { id, refs: [] };
  if (tab !== state.draftKey && !state.draftReplaces.refs.some((x) => x.tab === tab)) state.draftReplaces.refs.push({ tab, seq });
}
function dropReplaces(id, tab) {
  const r = state.draftReplaces;
  if (r && r.id === id) r.refs = r.refs.filter((x) => x.tab !== tab);
}
// The drafts `refs` (replacesOf) that the server removed with a put or a save.
function forgetReplaced(id, who, refs) {
  state.drafts = state.drafts.filter((x) => !(x.structure_id === id && x.reviewer === who && refs.some((r) => supersedes(r, x))));
  renderDrafts();
}
// `tab`, and `replaces` with the change number each was read at, of a draft put or a save.
const draftQuery = (key, refs) => `&tab=${encodeURIComponent(key)}` +
  refs.map((r) => `&replaces=${encodeURIComponent(r.tab)}&replaces_seq=${r.seq}`).join('');

// Undo (back) or Redo of a step that set the drawing aside under another key (`parks`: the key
// before, `key`; after, `next`): this tab's drawing goes back under that key. `replaces`: the
// draft the step restored (this tab's drawing takes its place only while the step is done);
// `dropNext`: the drawing kept under `next` is a version and the edits undone since (Load vN
// only), removed when the drawing is kept again under `key`.
function switchDraftKey(p, back) {
  state.draftKey = back ? p.key : p.next;
  for (const r of p.replaces || []) (back ? dropReplaces(p.id, r.tab) : addReplaces(p.id, r.tab, r.seq));
  // (this tab's own key: whatever this tab kept under it, every change so far)
  if (p.dropNext) (back ? addReplaces(p.id, p.next, state.draftSeq) : dropReplaces(p.id, p.next));
  renderDrafts();
}

function upsertDraft(d) {
  state.drafts = state.drafts.filter((x) => !(x.structure_id === d.structure_id && x.reviewer === d.reviewer && x.tab === d.tab))
    .concat([d]);
  renderDrafts();
}

function forgetDraft(id, who, tab) {
  state.drafts = state.drafts.filter((x) => !(x.structure_id === id && x.reviewer === who && x.tab === tab));
  renderDrafts();
}

async function refreshDrafts() {
  state.drafts = await api('GET', '/api/drafts');
  renderDrafts();
}

// A draft request's body: the drawing as a .nii.gz, gzipped once more (sent `Content-Encoding:
// gzip`, the server inflates that layer). Deflate cannot beat ~1030:1, so one gzip of a large
// CT's drawing is ~40 KB even when empty (512 x 512 x 160) and mostly the same few bytes over
// and over, which the second one shrinks 3 to 100-fold (docs/ui.md has the figures).
const draftBody = (bytes, level = 1) => gzipSync(gzipSync(bytes, { level }), { level: 9 });

// Drafts kept in this browser: a page-leave request too large to outlive the page is written
// here first (localStorage: synchronous, so it is kept even when the tab is closed at once),
// and sent on the next open of the same case in this browser (sendUnsent) under the tab and
// change number it had: the server keeps it only when newer than what it holds of that tab
// and than what went of it (saved, discarded, restored elsewhere). Removed once the server has
// it (or a newer one of that tab), or answers that it went.
const UNSENT = 'isoline.unsentDrafts';
const caseKey = [...token].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, 2166136261).toString(36);
function unsentDrafts() {
  try {
    const v = JSON.parse(localStorage.getItem(UNSENT) || '[]');
    return Array.isArray(v) ? v.filter((u) => u && typeof u === 'object') : [];
  } catch (e) { return []; }
}
function storeUnsent(list) {
  try {
    if (list.length) localStorage.setItem(UNSENT, JSON.stringify(list));
    else localStorage.removeItem(UNSENT);
    return true;
  } catch (e) { return false; }  // storage off or full
}
function keepUnsent(p, body) {
  let b64 = '';
  for (let i = 0; i < body.length; i += 0x8000) b64 += String.fromCharCode.apply(null, body.subarray(i, i + 0x8000));
  const entry = { case: caseKey, id: p.id, name: p.name, key: p.key, seq: p.seq, reviewer: reviewer(), url: draftUrl(p),
                  time: new Date().toISOString(), body: btoa(b64) };
  return storeUnsent(unsentDrafts().filter((u) => !(u.case === caseKey && u.id === p.id && u.key === p.key)).concat([entry]));
}
// The server has tab `key`'s drawing of structure `id` up to change `seq` (kept or saved).
function forgetUnsent(id, key, seq) {
  const list = unsentDrafts();
  const rest = list.filter((u) => !(u.case === caseKey && u.id === id && u.key === key && u.seq <= seq));
  if (rest.length !== list.length) storeUnsent(rest);
}
// What became of a draft that is no draft any more (the server's `gone`), in words.
const GONE_WORDS = { discarded: 'discarded', saved: 'saved', restored: 'restored in another window (which keeps it)' };
// Sends the drafts kept in this browser for this case (each removed here once the server has it,
// or has it no more: a copy of a draft discarded, saved or restored elsewhere since is not kept
// again; one of later changes than those is).
async function sendUnsent() {
  for (const u of unsentDrafts().filter((x) => x.case === caseKey)) {
    try {
      const raw = atob(u.body), body = new Uint8Array(raw.length);
      for (let i = 0; i < raw.length; i++) body[i] = raw.charCodeAt(i);
      const d = await api('PUT', u.url, undefined, { binary: body, encoding: 'gzip', author: u.reviewer,
                                                      what: `keep the drawing of ${u.name} as a draft` });
      forgetUnsent(u.id, u.key, u.seq);
      if (!d.stale) {
        message(`your unsaved drawing of ${u.name} (${u.reviewer}), kept in this browser when its page was left ` +
                '(too large to send then), is now kept by the server as a draft', 'ok');
      } else if (d.gone) {
        // (the page-leave request had reached the server, the page was gone before its answer;
        // since then the draft was discarded, saved or restored in another window)
        message(`your unsaved drawing of ${u.name} (${u.reviewer}), kept in this browser when its page was left, ` +
                `was ${GONE_WORDS[d.gone] || d.gone} meanwhile: not kept again`, 'ok');
      }
    } catch (e) {
      if (!state.unsentSaid) {
        message(`an unsaved drawing of ${u.name} kept in this browser could not be sent to the server yet (${e.message || e}); ` +
                'it stays here and is sent again', 'err');
      }
      state.unsentSaid = true;
    }
  }
}

// What this tab would send as its draft now, or null (nothing unsaved, already sent, no name
// typed).
function draftPayload() {
  const id = state.editId;
  if (id === null || !state.dirty || state.draftSeq === state.draftSentSeq) return null;
  const s = structureById(id);
  if (!s || !reviewer()) return null;
  return { id, name: s.name, base: state.editBase, seq: state.draftSeq, key: state.draftKey, replaces: replacesOf(id),
           action: state.pendingActions.length ? state.pendingActions.join(', ').slice(0, 200) : 'edit' };
}

// `tab` (this tab's key) and `seq` let the server keep the newest of this tab's drafts when two
// of its requests (the timed one and the page-leave one) arrive out of order.
const draftUrl = (p) => `/api/structures/${p.id}/draft?base_version=${p.base}&action=${encodeURIComponent(p.action)}` +
  `&seq=${p.seq}${draftQuery(p.key, p.replaces)}`;

// About 2 s after the last change, and at the latest 10 s after the first change not sent yet
// (painting on and on without a pause is kept too).
function scheduleDraft() {
  state.draftSeq++;
  clearTimeout(state.draftTimer);
  const now = Date.now(), wait = window.app.draftDelayMs;
  if (!state.draftPendingSince) state.draftPendingSince = now;
  state.draftTimer = setTimeout(draftTimerFires, Math.max(0, Math.min(wait, state.draftPendingSince + 5 * wait - now)));
}

function draftTimerFires() {
  state.draftPendingSince = 0;
  if (state.dirty && !reviewer() && !state.draftNoNameSaid) {
    state.draftNoNameSaid = true;
    message('type your name (Reviewer box) so that your unsaved drawing is kept on the server as a draft', 'err');
  }
  sendDraft().catch((e) => {
    if (!state.draftFailing) message(`could not keep your unsaved drawing as a draft on the server: ${e.message || e}`, 'err');
    state.draftFailing = true;
    // Not kept (no server, refused): sent again a moment later, the wait doubling up to a
    // minute, not only with the next change (without one, a crash or a killed tab later lost
    // the drawing). A change meanwhile has set its own timer, which this replaces.
    if (state.draftSentSeq < state.draftSeq) {
      const wait = Math.min(60000, window.app.draftDelayMs * 2 ** Math.min(state.draftRetries++, 6));
      clearTimeout(state.draftTimer);
      state.draftTimer = setTimeout(draftTimerFires, wait);
    }
  });
}

// The server keeps the drawing of payload `p` (draftPayload) as this tab's draft (`d`: its
// answer): the drafts it was restored from are gone.
function draftKept(p, d) {
  if (p.key === state.draftKey) state.draftSentSeq = Math.max(state.draftSentSeq, p.seq);
  forgetUnsent(p.id, p.key, p.seq);
  if (d && !d.stale) {
    for (const r of p.replaces) dropReplaces(p.id, r.tab);
    forgetReplaced(p.id, d.reviewer, p.replaces);
  }
  // (`saved`: this tab saved the drawing before the request arrived: it is not a draft; `gone`:
  // saved, discarded or restored elsewhere since: not kept again)
  if (d && d.structure_id !== undefined && !d.saved && !d.gone) upsertDraft(d);
}

// Sends the drawing as the draft (after the draft requests before it). Resolves to true when
// it was sent, false when there was nothing to send; rejects when the server refused it.
function sendDraft() {
  const run = async () => {
    const p = draftPayload();
    if (!p) return false;
    const bytes = await nv.saveImage({ filename: '', isSaveDrawing: true });
    if (!(bytes instanceof Uint8Array)) throw new Error('could not export the drawing');
    const d = await api('PUT', draftUrl(p), undefined,
                        { binary: draftBody(bytes), encoding: 'gzip', what: `keep the drawing of ${p.name} as a draft` });
    draftKept(p, d);
    state.draftFailing = false;
    state.draftRetries = 0;
    return true;
  };
  const next = state.draftChain.then(run);
  state.draftChain = next.catch(() => false);  // the chain itself never fails
  return next;
}

// The page is hidden or left (tab closed, reload, browser quit): the unsaved drawing goes to
// the server now, with a request that outlives the page (keepalive: a body of at most 64 KB,
// which the drawing gzipped twice is on a 512 x 512 x 160 CT even with large structures drawn).
// One that is larger still is first kept in this browser (localStorage, written at once) and
// sent from there on the next open of the case here (keepUnsent), then tried tighter (gzip
// level 9 twice, slower), sent with keepalive if that fits, else plainly.
function draftOnLeave() {
  const p = draftPayload();
  if (!p || p.seq === state.draftLeaveSeq) return;
  state.draftLeaveSeq = p.seq;
  clearTimeout(state.draftTimer);
  // (saveImage without a file name resolves at once: all of this runs before the page goes)
  state.draftLeaving = nv.saveImage({ filename: '', isSaveDrawing: true }).then((bytes) => {
    if (!(bytes instanceof Uint8Array)) return;
    const max = window.app.keepaliveMax;
    let body = draftBody(bytes);
    window.app.leaveBody = { bytes: body.length, kept: false };
    if (body.length > max) {
      window.app.leaveBody.kept = keepUnsent(p, body);
      body = draftBody(bytes, 9);
      window.app.leaveBody.tighter = body.length;
    }
    return api('PUT', draftUrl(p), undefined, { binary: body, encoding: 'gzip', keepalive: body.length <= max,
                                                what: `keep the drawing of ${p.name} as a draft` })
      .then((d) => draftKept(p, d));
  }).catch(() => {
    // Not kept (refused, or no server): the page, if still there (only hidden), sends it again
    // as after a change, and leaving again sends it too; it was never sent otherwise until the
    // next stroke, and a crash or a closed tab later lost it.
    if (state.draftLeaveSeq === p.seq) state.draftLeaveSeq = -1;
    if (state.draftSentSeq < p.seq) {
      clearTimeout(state.draftTimer);
      state.draftTimer = setTimeout(draftTimerFires, window.app.draftDelayMs);
    }
  });
}

// Right before the drawing of `s` is replaced or set aside ("Load vN only", a delete, a
// restore over it): the drawing goes to the server as this tab's draft. True when the server
// keeps it; false when it cannot be kept as a draft (no name); throws when the server refused it.
async function keepDrawingAsDraft(s) {
  if (!s || !state.dirty || state.editId !== s.id || !reviewer()) return false;
  clearTimeout(state.draftTimer);
  await sendDraft();
  return state.draftSentSeq === state.draftSeq;
}

// What "Load vN only" does with the reviewer's drawing, said on its button.
function theirsKeeps(id) {
  if (reviewer()) return 'your drawing is kept as a draft and one Undo away';
  return 'your drawing stays reachable with Undo (in this tab only: type your name to keep it as a draft)';
}

// "Load vN only": the other version into the drawing, one undoable step. `kept`: the drawing
// was sent as a draft just before, which this tab then leaves as it is (set aside: the next
// changes are kept under a new key); Undo of the step brings the drawing back and this tab
// keeps that draft up to date again.
async function loadTheirs(s, label, kept) {
  const n = state.undo.length;
  await reloadDrawingFromServer(label);
  state.editBase = structureById(s.id).version;
  if (kept) {  // the kept drawing is set aside: this tab's next changes are kept under a new key
    const key = state.draftKey;
    state.draftKey = newDraftKey();
    if (state.undo.length > n) state.undo[state.undo.length - 1].parks = { id: s.id, key, next: state.draftKey, dropNext: true };
  }
  renderDrafts();
}

// Restores a draft into the drawing, unsaved. Drawn on an older version than the latest, it
// goes through the three-way merge (every voxel the draft changed from its base version as the
// draft has it, every other voxel as the latest version has it). One undoable step. The
// drawing it replaces is kept as this tab's draft first (and then set aside, offered like the
// others); a draft of this reviewer that is restored is replaced by this tab's draft once that
// is kept (or saved), the reviewer's other drafts stay. Undo gives back the drawing before,
// and the restored drawing is offered again.
async function restoreDraft(d) {
  const me = reviewer(), mine = d.reviewer === me;
  await refreshStructures();
  const s = structureById(d.structure_id);
  if (!s) throw new Error(`${d.name} was deleted: restore it first (Deleted: restore ${d.name}), then its drawing`);
  if (state.editId !== s.id) await startEdit(s.id);  // (unsaved paint of another structure is saved first)
  let img;
  try {
    img = await loadImage(`/api/structures/${s.id}/draft.nii?reviewer=${encodeURIComponent(d.reviewer)}&tab=${encodeURIComponent(d.tab || '')}`,
                          `${s.id}.nii`);
  } catch (e) {
    if (e.status !== 404) throw e;
    await refreshDrafts();
    throw new Error(`${d.name}: this unsaved drawing (${mine ? `${draftWhere(d)}, ` : ''}${draftWhen(d)}) is no longer kept: ` +
                    'it was restored, saved or discarded in another window meanwhile');
  }
  const setAside = state.dirty && (await keepDrawingAsDraft(s));  // the drawing now, before it is replaced
  const latest = s.version;
  const prev = drawing().slice(), prevBase = state.editBase;
  const label = `restore ${mine ? 'draft' : `draft of ${d.reviewer}`} (${draftWhen(d)}, drawn on v${d.base_version})`;
  const n = state.undo.length;
  let changed;
  try {
    if (!nv.loadDrawing(img)) throw new Error('the draft does not match the CT grid');
    if (d.base_version !== latest) {
      state.editBase = d.base_version;
      await mergeIntoLatest(s, latest, `${label}, merged into v${latest}`);
      changed = state.undo.length > n;
    } else {
      changed = recordStep(label);
      state.editBase = latest;
    }
  } catch (e) {
    if (drawing() && drawing().length === prev.length) drawing().set(prev);
    nv.refreshDrawing(true);
    state.editBase = prevBase;
    throw e;
  }
  const whose = mine ? 'your' : `${d.reviewer}'s`;
  if (!changed && !state.dirty) {  // the draft is what the live version has: nothing to restore
    const gone = mine && (await dropDraft(d));
    message(`${s.name}: ${whose} unsaved drawing is the same as v${latest}: nothing to restore` +
            (gone ? '; the draft is discarded' : mine ? '; its window drew on since: the draft is kept' : ''), 'ok');
    return;
  }
  if (changed) {
    // The restored drawing is kept under a new key of this tab (the drawing before it stays as
    // it was kept); it takes the restored draft's place once it is kept.
    const key = state.draftKey;
    state.draftKey = newDraftKey();
    const replaces = mine && d.tab !== undefined ? [{ tab: d.tab, seq: Number(d.seq) || 0 }] : [];
    for (const r of replaces) addReplaces(s.id, r.tab, r.seq);
    state.undo[state.undo.length - 1].parks = { id: s.id, key, next: state.draftKey, replaces, dropNext: false };
  }
  renderStructures();
  updateButtons();
  renderDrafts();
  const text = `${s.name}: ${whose} unsaved drawing (${mine ? `${draftWhere(d)}, ` : ''}${draftWhen(d)}, drawn on v${d.base_version}) restored` +
    (d.base_version !== latest ? ` and merged into v${latest} (${s.author}: ${s.action})` : '') +
    ', not saved yet: check it, then Save (Undo: ' + (!changed ? 'your drawing before)'
      : setAside ? 'your drawing before, which is also kept as a draft)' : `v${latest} as saved)`);
  message(text, 'ok');
  setStatus(text, false);
}

async function discardDraft(d) {
  if (!window.confirm(`Discard your unsaved drawing of ${d.name} (${draftWhere(d)}, ${draftWhen(d)}, drawn on v${d.base_version})? ` +
                      'It is not a version: it cannot be brought back. Your other unsaved drawings stay.')) return;
  if (!(await dropDraft(d)))
    throw new Error(`${d.name}: not discarded: this unsaved drawing (${draftWhere(d)}, ${draftWhen(d)}) changed since it ` +
                    'was shown (its window drew on); look at it again');
  message(`discarded your unsaved drawing of ${d.name} (${draftWhere(d)}, ${draftWhen(d)})`, 'ok');
}

// Removes own draft `d` as it was shown (its change number): false, and the list refreshed,
// when it was written since (its window, still open, drew on): then it stays.
async function dropDraft(d) {
  try {
    await api('DELETE', `/api/structures/${d.structure_id}/draft?tab=${encodeURIComponent(d.tab || '')}&seq=${Number(d.seq) || 0}`);
  } catch (e) {
    if (e.status !== 409) throw e;
    await refreshDrafts();
    return false;
  }
  forgetDraft(d.structure_id, d.reviewer, d.tab);
  return true;
}

// The drafts this tab does not hold as its drawing, over the viewer (under the notice): per
// draft of this reviewer Restore and Discard, with where and when it was drawn ("another
// window, 14:02"); another reviewer's drafts are shown as theirs (a copy can be loaded into
// this reviewer's drawing; nothing is restored by itself).
function renderDrafts() {
  const box = $('drafts');
  if (!box) return;
  const me = reviewer();
  const shown = state.drafts.filter((d) => !isLiveDraft(d) && !replacedBy(d));
  window.app.draftsShown = shown;
  box.hidden = !shown.length;
  box.innerHTML = '';
  if (!shown.length) return;
  const title = document.createElement('div');
  title.className = 'drafts-title';
  title.textContent = (shown.length === 1 ? 'An unsaved drawing is' : `${shown.length} unsaved drawings are`) +
    ' kept by the server (not saved as a version, not part of an approval):';
  box.appendChild(title);
  for (const d of shown) {
    const mine = d.reviewer === me;
    const s = structureById(d.structure_id);
    const row = document.createElement('div');
    row.className = mine ? 'draft' : 'draft draft-other';
    row.dataset.structure = d.name;
    row.dataset.reviewer = d.reviewer;
    row.dataset.tab = d.tab || '';
    const when = `${mine ? `${draftWhere(d)}, ` : ''}${draftWhen(d)}, drawn on v${d.base_version}`;
    const restore = document.createElement('button');
    restore.className = 'draft-restore';
    restore.textContent = mine ? `Restore your unsaved drawing of ${d.name} (${when})`
      : `Load ${d.reviewer}'s unsaved drawing of ${d.name} into yours (${when})`;
    restore.title = `last change ${fmtTime(d.time)}: ${d.action || 'edit'} (${d.voxels} voxels)`;
    restore.disabled = !s;
    restore.addEventListener('click', () => guard(() => restoreDraft(d), 'restore of a drawing'));
    row.appendChild(restore);
    if (mine) {
      const discard = document.createElement('button');
      discard.className = 'draft-discard';
      discard.textContent = 'Discard';
      discard.setAttribute('aria-label', `discard your unsaved drawing of ${d.name} (${when})`);
      discard.addEventListener('click', () => guard(() => discardDraft(d), 'discard of a drawing'));
      row.appendChild(discard);
    }
    const notes = [];
    if (!mine) notes.push(`${d.reviewer}'s, not yours: it stays theirs`);
    if (!s) notes.push(`${d.name} was deleted: restore it first (Deleted: restore ${d.name})`);
    else if (s.version > d.base_version) notes.push(`${d.name} is at v${s.version} now: restoring merges the drawing into it`);
    if (s && state.editId === s.id && state.dirty)
      notes.push(`restoring puts it in place of your drawing of ${d.name} now${me ? ', which is kept as a draft too' : ''} (one Undo away)`);
    if (notes.length) {
      const n = document.createElement('span');
      n.className = 'draft-note';
      n.textContent = ` ${notes.join('; ')}`;
      row.appendChild(n);
    }
    box.appendChild(row);
  }
}

// ---------------------------------------------------------------------------------------
// Other tabs and people: the client polls the latest version of every structure (a cheap
// request, no masks) and says which structures were changed, created or deleted elsewhere,
// with a button to load them. Nothing is loaded by itself: an unsaved drawing is never
// replaced without the reviewer's say.

async function pollVersions() {
  if (state.busy || state.polling || !state.structures.length) return;
  state.polling = true;
  const seq = state.seq;
  try {
    if (unsentDrafts().some((u) => u.case === caseKey)) await sendUnsent();  // (the server was away at the open)
    const r = await api('GET', '/api/versions', undefined, { what: 'check for newer versions' });
    if (state.busy || seq !== state.seq) return;  // an action of this tab ran meanwhile
    state.remote = r.structures;
    if (r.drafts) state.drafts = r.drafts;
    renderNotice();
    renderDrafts();
  } catch (e) {
    // the server is down or busy: the next save or the next poll says so
  } finally {
    state.polling = false;
  }
}
window.app.pollVersions = pollVersions;

function schedulePoll() {
  clearTimeout(state.pollTimer);
  state.pollTimer = setTimeout(async () => {
    await pollVersions();
    schedulePoll();
  }, window.app.pollMs);
}

// The structures changed elsewhere since this tab loaded them.
function remoteChanges() {
  const out = [];
  for (const r of state.remote) {
    const local = structureById(r.id);
    if (!local && !r.deleted) out.push({ ...r, kind: 'created' });
    else if (local && r.deleted) out.push({ ...r, kind: 'deleted' });
    else if (local && r.version > local.version) out.push({ ...r, kind: 'changed' });
  }
  return out;
}

function renderNotice() {
  const box = $('notice');
  if (!box) return;
  const changes = remoteChanges();
  window.app.notice = changes;
  box.hidden = !changes.length;
  box.innerHTML = '';
  if (!changes.length) return;
  for (const c of changes) {
    const d = document.createElement('div');
    const mine = c.id === state.editId && state.dirty;
    d.textContent = c.kind === 'created' ? `${c.name} was created by ${c.author} (v${c.version}): reload to see it`
      : c.kind === 'deleted' ? `${c.name} was deleted by ${c.author} (v${c.version}): reload it`
      : `${c.name} was changed by ${c.author} (${c.action}, v${c.version}): reload it` +
        (mine ? ` — your unsaved drawing of ${c.name} is kept until you choose` : '');
    box.appendChild(d);
  }
  const b = document.createElement('button');
  b.id = 'btn-reload-changed';
  b.textContent = changes.length === 1 ? `reload ${changes[0].name}` : `reload ${changes.length} structures`;
  b.addEventListener('click', () => guard(reloadChanged, 'reload'));
  box.appendChild(b);
}

// Loads what changed elsewhere. The structure being edited with unsaved paint goes through
// the conflict dialog: merged (the default: the other version with this tab's changes
// re-applied, unsaved), replaced (one undoable step: Undo brings the drawing back) or kept
// as it is with its base version (its save then meets the dialog again).
async function reloadChanged() {
  const r = await api('GET', '/api/versions', undefined, { what: 'reload' });
  state.remote = r.structures;
  const mine = state.editId !== null && remoteChanges().find((c) => c.id === state.editId);
  let take = true, merge = false;
  if (mine && state.dirty && mine.kind === 'changed') {
    const s = structureById(state.editId);
    const choice = await askConflict(`${s.name} was ${mine.kind} by ${mine.author} (${mine.action}, v${mine.version}) ` +
      `while you were drawing on version ${state.editBase}.\n\nYour drawing is not saved yet. Nothing is lost whichever you choose.`,
      { merge: `Merge (Enter): load v${mine.version} and re-apply your changes on it; then check and Save`,
        theirs: `Load v${mine.version} only: ${theirsKeeps(s.id)}`,
        mine: null,
        later: `Keep your drawing (Esc): load the other structures only; Save will ask again` });
    take = choice !== 'later';
    merge = choice === 'merge';
  } else if (mine && state.dirty) {  // deleted elsewhere: the unsaved drawing stays
    take = false;
    message(`${mine.name} was deleted by ${mine.author} (v${mine.version}); your unsaved drawing is kept: ` +
            `restore ${mine.name} (Deleted: restore) to save it`, 'err');
  }
  const kept = mine && !take ? { ...structureById(state.editId) } : null;
  const base = state.editBase;
  // "Load theirs" over unsaved paint: the drawing goes to the server as a draft first.
  const keptAsDraft = mine && take && !merge && state.dirty ? await keepDrawingAsDraft(structureById(state.editId)) : false;
  if (r.drafts) state.drafts = r.drafts;
  await refreshStructures();
  if (kept) {  // this tab keeps what it drew on: its version, its drawing (the notice stays)
    const i = state.structures.findIndex((x) => x.id === kept.id);
    if (i >= 0) state.structures[i] = kept;
    else state.structures.push(kept);
    state.editBase = base;
    state.remote = r.structures.filter((x) => x.id === kept.id);
  } else if (mine && !structureById(state.editId)) {  // deleted elsewhere
    nv.closeDrawing();
    state.editId = null;
    state.dirty = false;
    state.undo = [];
    state.redo = [];
  } else if (mine && merge) {
    await mergeIntoLatest(structureById(state.editId), mine.version, `merge into v${mine.version} (${mine.author}: ${mine.action})`);
  } else if (mine) {
    await loadTheirs(structureById(state.editId), `load v${mine.version} (${mine.author}: ${mine.action})`, keptAsDraft);
  }
  await syncOverlays();
  renderStructures();
  updateButtons();
  await refreshDvh();
  message(`reloaded: ${r.structures.length} structures, latest versions` + (kept ? `; your drawing of ${kept.name} kept` : '') +
          (keptAsDraft ? `; your drawing of ${structureById(state.editId).name} is kept as a draft (Restore) and one Undo away` : '') +
          (merge ? `; your drawing of ${structureById(state.editId).name} re-applied on v${mine.version}, not saved yet` : ''), 'ok');
  setStatus(merge ? `merged: ${structureById(state.editId).name} v${mine.version} + your drawing, not saved yet: check it, then Save` : 'ready');
}

// Runs one user action at a time. A click while another runs is not dropped silently: it
// says what it waits for. Errors go to the messages and, in full, to the header's status
// line (visible without scrolling).
async function guard(fn, what = '') {
  if (state.busy) {
    busyNotice();
    return;
  }
  state.busy = true;
  state.busyWhat = what;
  state.seq++;
  applyTool();  // no painting while a request runs (see drawingLocked)
  try {
    await fn();
  } catch (e) {
    const text = e.message || String(e);
    message(text, 'err');
    setStatus(/^(approval refused|approval failed|type your name|conflict)/i.test(text) ? text : `error: ${text}`, true);
    window.app.lastError = text;
  } finally {
    state.seq++;
    state.busy = false;
    state.busyWhat = '';
    state.busyPaint = false;
    applyTool();
  }
}

// The readout under the viewer: position, CT, dose, and the structures at the crosshair. Only
// the structures shown are listed as such; hidden ones (the Body at start) are named apart as
// hidden. The structure being edited is read from the drawing (unsaved paint included).
function locationHtml(d) {
  if (!d || !d.values || !nv.back) return '';
  const value = (img) => {
    const k = nv.volumes.indexOf(img);
    return k >= 0 && d.values[k] ? Number(d.values[k].value) : NaN;
  };
  // Position in DICOM patient coordinates (LPS, what Eclipse, RayStation and the case's DICOM
  // CT use): NiiVue works in NIfTI's RAS, so x and y change sign.
  const ras = Array.from(d.mm).slice(0, 3);
  const lps = [-ras[0], -ras[1], ras[2]].map((v) => (Math.abs(v) < 0.05 ? 0 : v));
  const f1 = (v) => v.toFixed(1);
  let out = `<span class="pos" title="DICOM patient coordinates (LPS): +x to the patient's left, +y posterior, ` +
    `+z superior (head)">x ${f1(lps[0])} y ${f1(lps[1])} z ${f1(lps[2])} mm (DICOM)</span>` +
    ` · CT ${Math.round(value(nv.volumes[0]))} HU`;
  if (state.dose) {
    const g = value(state.dose);
    out += ` · dose ${Number.isFinite(g) ? g.toFixed(1) : '–'} Gy`;
  }
  const shown = [], hidden = [];
  const dims = nv.back.dimsRAS;
  for (const s of state.structures) {
    let inside;
    if (s.id === state.editId && nv.drawBitmap) {
      const v = d.vox;
      inside = nv.drawBitmap[v[0] + dims[1] * (v[1] + dims[2] * v[2])] > 0;
    } else {
      inside = value(state.overlays.get(s.id)) > 0;
    }
    if (inside) (state.visible.get(s.id) === false ? hidden : shown).push(s.name);
  }
  out += ` · in: ${shown.length ? shown.map(escapeHtml).join(', ') : '–'}`;
  if (hidden.length) out += ` <span class="hidden-in">(hidden: ${hidden.map(escapeHtml).join(', ')})</span>`;
  window.app.location = { shown, hidden, lps, ras };
  return out;
}

// Where a key press belongs to the control: text and number boxes, text areas, drop-downs.
const NON_TYPING_INPUTS = new Set(['checkbox', 'radio', 'button', 'submit', 'reset', 'range', 'color', 'file', 'image']);
function typingTarget(t) {
  if (!t || !t.tagName) return false;
  const tag = t.tagName.toUpperCase();
  if (tag === 'TEXTAREA' || tag === 'SELECT' || t.isContentEditable) return true;
  return tag === 'INPUT' && !NON_TYPING_INPUTS.has((t.type || 'text').toLowerCase());
}

function wire() {
  document.querySelectorAll('[data-view]').forEach((b) => b.addEventListener('click', () => setView(b.dataset.view)));
  $('reviewer').addEventListener('input', () => { rememberReviewer(); renderDrafts(); });
  $('status').addEventListener('click', () => $('messages').scrollIntoView({ block: 'nearest' }));
  document.querySelectorAll('[data-preset]').forEach((b) => b.addEventListener('click', () => {
    const p = PRESETS[b.dataset.preset];
    setWindow(p.w, p.l);
  }));
  $('win-w').addEventListener('change', () => setWindow(Number($('win-w').value), Number($('win-l').value)));
  $('win-l').addEventListener('change', () => setWindow(Number($('win-w').value), Number($('win-l').value)));
  $('drag-mode').addEventListener('change', () => nv.setDragMode($('drag-mode').value));
  $('btn-reset-view').addEventListener('click', () => { nv.setPan2Dxyzmm([0, 0, 0, 1]); nv.drawScene(); });
  document.querySelectorAll('[data-fov]').forEach((b) => b.addEventListener('click', () => setFov(b.dataset.fov)));
  document.querySelectorAll('[data-tool]').forEach((b) => b.addEventListener('click', () => {
    state.tool = b.dataset.tool;
    if (state.tool !== 'none') ensureEditVisible();
    applyTool();
  }));
  for (const id of ['brush-mm', 'brush-3d']) $(id).addEventListener('change', applyTool);
  $('margin-per-dir').addEventListener('change', () => { $('margin-dirs').hidden = !$('margin-per-dir').checked; });
  $('btn-undo').addEventListener('click', undo);
  $('btn-redo').addEventListener('click', redo);
  $('btn-interp').addEventListener('click', () => {
    if (drawingLocked()) return;
    nv.interpolateMaskSlices();
    if (!recordStep('fill between slices')) message('fill between slices: nothing to interpolate (paint two slices first)');
  });
  $('btn-save').addEventListener('click', () => guard(save, 'save'));
  $('btn-approve').addEventListener('click', () => guard(approve, 'approval'));
  $('btn-margin').addEventListener('click', () => guard(() => {
    const body = { op: 'margin', mode: $('margin-mode').value };
    if ($('margin-per-dir').checked) {
      document.querySelectorAll('[data-dir]').forEach((i) => { body[i.dataset.dir] = Number(i.value); });
    } else {
      body.mm = Number($('margin-mm').value);
    }
    return serverEdit(body, 'margin');
  }, 'margin'));
  $('btn-bool').addEventListener('click', () => guard(() =>
    serverEdit({ op: 'boolean', operation: $('bool-op').value, other: $('bool-other').value }, 'boolean'), 'boolean'));
  $('btn-smooth').addEventListener('click', () => guard(() =>
    serverEdit({ op: 'smooth', sigma_mm: Number($('smooth-mm').value) }, 'smooth'), 'smoothing'));
  $('btn-islands').addEventListener('click', () => guard(() =>
    serverEdit({ op: 'remove_islands', min_cc: Number($('islands-cc').value) }, 'remove islands'), 'island removal'));
  $('btn-create').addEventListener('click', () => guard(createStructure, 'new structure'));
  $('btn-rename').addEventListener('click', () => guard(renameStructure, 'rename'));
  $('btn-delete').addEventListener('click', () => guard(deleteStructure, 'delete'));
  $('btn-history').addEventListener('click', () => guard(showHistory, 'history'));
  $('btn-reestimate').addEventListener('click', () => guard(reestimateDose, 'dose re-estimation'));
  $('dose-wash').addEventListener('change', () => {
    if (!state.dose) return;
    state.dose.opacity = $('dose-wash').checked ? 0.3 : 0;
    applyStructureStyle();
    nv.updateGLVolume();
  });
  $('struct-style').addEventListener('change', () => { applyStructureStyle(); nv.updateGLVolume(); });
  $('dose-iso').addEventListener('change', () => { if (state.isodose) { state.isodose.opacity = $('dose-iso').checked ? 1 : 0; nv.updateGLVolume(); } });

  const canvas = $('gl');
  // (registered before NiiVue's own mouse handlers: this runs before a stroke paints)
  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || !state.editId || state.tool === 'none') return;
    if (drawingLocked()) return;  // NiiVue's drawing is off while busy: the click only moves the crosshair
    if (ensureEditVisible()) applyTool();
    state.painting = true;
    if ($('brush-3d').checked) setTimeout(paintSphere, 0);
  });
  window.addEventListener('pointerup', () => {
    if (!state.painting) return;
    state.painting = false;
    setTimeout(endStroke, 0);
  });
  nv.onIntensityChange = windowChanged;
  nv.onLocationChange = (d) => {
    $('loc').innerHTML = locationHtml(d);
    if (state.painting && $('brush-3d').checked) paintSphere();
  };
  window.addEventListener('keydown', (e) => {
    const mod = e.ctrlKey || e.metaKey, key = (e.key || '').toLowerCase();
    // Ctrl-S saves wherever the focus is (in a text box it has no other use).
    if (mod && key === 's') { e.preventDefault(); guard(save, 'save'); return; }
    // The other shortcuts work unless the focus is where typing or arrow keys mean something:
    // a text or number box, a text area, a drop-down (checkboxes and buttons keep them).
    if (typingTarget(e.target)) return;
    // Page Up/Down, arrow up/down: next/previous slice of the single view (axial in A+C+S)
    const step = { PageUp: 1, ArrowUp: 1, PageDown: -1, ArrowDown: -1 }[e.key];
    if (step && !e.ctrlKey && !e.metaKey && nv.volumes.length) {
      e.preventDefault();
      const t = nv.opts.sliceType, v = [0, 0, 0];
      v[t === SLICE_TYPE.CORONAL ? 1 : t === SLICE_TYPE.SAGITTAL ? 0 : 2] = step;
      nv.moveCrosshairInVox(v[0], v[1], v[2]);
      return;
    }
    // (with Shift held the key is 'Z')
    if (mod && key === 'z') { e.preventDefault(); e.shiftKey ? redo() : undo(); }
    if (mod && key === 'y') { e.preventDefault(); redo(); }
  });
  window.addEventListener('beforeunload', (e) => { if (state.dirty) { e.preventDefault(); e.returnValue = ''; } });
  // Leaving or hiding the page: the unsaved drawing goes to the server as a draft now.
  window.addEventListener('pagehide', draftOnLeave);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') draftOnLeave(); });
}

async function main() {
  window.__status = 'loading';
  const t0 = performance.now();
  const mark = (what) => { window.app.timings[what] = Math.round(performance.now() - t0); };
  window.app.timings = {};
  try {
    wire();
    const px = Number(new URLSearchParams(location.search).get('canvas'));
    if (px >= 200 && px <= 2000) {  // smaller canvas for headless tests (software WebGL)
      $('gl-box').style.width = `${px}px`;
      $('gl-box').style.height = `${px}px`;
    }
    await nv.attachTo('gl');
    if (new URLSearchParams(location.search).get('shader') !== 'niivue') useLeanSliceShader(true);
    mark('attach');
    state.info = await api('GET', '/api/case');
    $('case-name').textContent = state.info.case;
    // The name this browser's reviewer typed before, else `serve --author`; never a placeholder.
    $('reviewer').value = storedReviewer() || state.info.author || '';
    $('reviewer').classList.toggle('need', !reviewer());
    const ct = await loadImage(state.info.ct.url, state.info.ct.name);
    ct.colormap = 'gray';
    ct.cal_min = PRESETS.soft.l - PRESETS.soft.w / 2;  // window before the first upload
    ct.cal_max = PRESETS.soft.l + PRESETS.soft.w / 2;
    $('win-w').value = PRESETS.soft.w;
    $('win-l').value = PRESETS.soft.l;
    nv.addVolume(ct);
    mark('ct');
    await loadDose(false);
    mark('dose');
    state.structures = await api('GET', '/api/structures');
    await syncOverlays(true);  // one commit for dose, isodose and structures
    mark('structures');
    renderStructures();
    await refreshDeleted();
    setView('large');
    setFov('structures');
    window.app.centreOnTarget = centreOnTarget;
    window.app.firstTarget = centreOnTarget();
    updateButtons();
    await refreshDvh();
    $('btn-reestimate').title = state.info.dose_estimator ? 'plan the achievable dose for the edited targets'
      : 'not available in this build (no planning entry point yet)';
    // Unsaved drawings kept from before (a closed or crashed tab, "Load vN only"): said plainly.
    // (first those this browser kept when a page of this case was left: the server then has them)
    await sendUnsent();
    await refreshDrafts();
    const mineKept = state.drafts.filter((d) => d.reviewer === reviewer());
    if (state.drafts.length) {
      const list = state.drafts.map((d) => `${d.name} (${d.reviewer === reviewer() ? `yours, ${draftWhere(d)}` : d.reviewer}, ` +
                                          `${draftWhen(d)}, drawn on v${d.base_version})`).join(', ');
      message(`unsaved drawings kept by the server, not saved as versions: ${list}; Restore or Discard them (over the viewer)`, 'err');
    }
    mark('ready');
    const names = [...new Set(mineKept.map((d) => d.name))].map((n) => {
      const k = mineKept.filter((d) => d.name === n).length;
      return k > 1 ? `${n} ×${k}` : n;
    });
    setStatus(mineKept.length ? `ready · ${mineKept.length === 1 ? 'an unsaved drawing' : `${mineKept.length} unsaved drawings`} ` +
      `of yours (${names.join(', ')}) kept from before: Restore or Discard (over the viewer)` : 'ready');
    window.__status = 'ready';
    schedulePoll();
  } catch (e) {
    setStatus(`error: ${e.message || e}`, true);
    message(e.stack || String(e), 'err');
    window.__status = `error: ${e.stack || e}`;
  }
}

main();
