// 督办看板: the board page. Plain JS, no libraries. Reads /board/api/* (filtered by role on the
// server), acts through the lifecycle API /api/alerts/{id}/{action}, live through server-sent events.
'use strict';

const $ = (s, root = document) => root.querySelector(s);
const state = {
  me: null,
  events: null,
  openId: null,
  units: [],
  refreshTimer: null,
};

const LEVEL = { yellow: '黄色预警', red: '红色督办', green: '绿色清零' };
const STATUS = {
  raised: '待分派', assigned: '待单位反馈', feedback_received: '待核实',
  closed: '已办结', merged: '已合并',
};
const ACTION = {
  raise: '预警', assign: '改派', feedback: '反馈', verify: '核实办结', reject: '核实未通过',
  escalate: '升级红色督办', reply_overdue: '书面回复逾期', reopen: '重新打开', recur: '复发',
  merge: '合并', reroute: '领域更正改派',
};
const BUTTON = {
  assign: '改派', feedback: '反馈办理情况', verify: '核实', escalate: '升级红色督办', reopen: '重新打开',
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function roleName(role) {
  if (!role) return '';
  if (role === 'supervisor') return '监督局';
  if (role === 'system') return '系统';
  if (role.startsWith('unit:')) return role.slice(5);
  return role;
}

// The session is an HttpOnly cookie set at login (the token never stays in the page); the
// X-Duban-Board header shows the server a request comes from this page.
async function api(path, opts = {}) {
  const headers = { Accept: 'application/json', 'X-Duban-Board': '1', ...(opts.headers || {}) };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {
    method: opts.method || 'GET',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    credentials: 'same-origin',
  });
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (!resp.ok) {
    const err = new Error((data && data.error) || `HTTP ${resp.status}`);
    err.status = resp.status;
    throw err;
  }
  return { status: resp.status, data };
}

// ---------------------------------------------------------------- login
async function login(token) {
  const { data } = await api('/board/api/login', { method: 'POST', body: { token } });
  start(data);
}

function logout() {
  if (state.events) state.events.close();
  fetch('/board/api/logout', { method: 'POST', headers: { 'X-Duban-Board': '1' } })
    .finally(() => location.replace('/'));
}

function start(me) {
  state.me = me;
  state.domains = me.domains || [];
  $('#login').hidden = true;
  $('#nav').hidden = false;
  $('#who').hidden = false;
  const who = me.role === 'unit' ? `执法单位：${me.unit}` : '监督局（督办员）';
  $('#who-name').textContent = me.name ? `${who} · ${me.name}` : who;
  document.body.dataset.role = me.role;
  if (me.role === 'unit') {
    // A unit sees only its own alerts: the unit filter would be pointless.
    $('#f-unit').closest('label').hidden = true;
  }
  connectEvents();
  route();
}

// ---------------------------------------------------------------- routing
function route() {
  const dash = location.hash === '#dashboard';
  const label = location.hash === '#label' && state.me.role === 'supervisor';
  $('#board').hidden = dash || label;
  $('#dashboard').hidden = !dash;
  $('#labeling').hidden = !label;
  $('#nav-board').classList.toggle('active', !dash && !label);
  $('#nav-dashboard').classList.toggle('active', dash);
  $('#nav-label').classList.toggle('active', label);
  if (dash) loadDashboard(); else if (label) loadQueue(); else loadBoard();
}

// ---------------------------------------------------------------- labels
// A supervisor's domain correction: of one complaint, or of an issue (re-routes its open alerts).
async function postLabel(body) {
  const { data } = await api('/api/labels', { method: 'POST', body });
  return data;
}

function labelOutcome(d) {
  const parts = [`已标注为「${d.label.domain}」`];
  if (d.rerouted && d.rerouted.length) parts.push(`已改派预警 ${d.rerouted.join('、')}`);
  if (d.pending && d.pending.length) parts.push(`改派待处理 ${d.pending.length} 件`);
  if (d.refused && d.refused.length) parts.push(`未改派：${d.refused.map((r) => r.reason).join('；')}`);
  return parts.join('，');
}

async function loadQueue() {
  const list = $('#label-queue');
  $('#label-meta').textContent = '计算中…';
  let q;
  try {
    ({ data: q } = await api('/board/api/label-queue?n=10'));
  } catch (e) {
    if (e.status === 401) return logout();
    $('#label-meta').textContent = `无法读取标注队列：${e.message}`;
    return;
  }
  state.domains = q.domains;
  $('#label-meta').textContent = `模型 ${q.model_version} · ${q.mode === 'diversity' ? '按多样性挑选' : '按不确定性与多样性挑选'} · 近期投诉 ${q.considered} 件，已标注 ${q.labeled} 件`;
  if (!q.items.length) {
    list.replaceChildren(el('li', { class: 'note', text: '暂无待标注的投诉' }));
    return;
  }
  list.replaceChildren(...q.items.map((it) => el('li', { class: 'q-item', 'data-complaint-id': it.complaint_id },
    el('div', { class: 'c-head' }, `${(it.received_at || '').slice(0, 16).replace('T', ' ')} · 引擎领域：${it.domain || '—'} · 模型猜测：${it.guess}（${Math.round(100 * it.confidence)}%）`),
    el('strong', { text: it.title }), el('p', { text: it.body }),
    el('div', { class: 'q-domains' }, q.domains.map((d) => el('button', {
      type: 'button', class: d === it.guess ? 'guess' : '', 'data-domain': d, text: d,
      onclick: async (ev) => {
        const out = $('#label-result');
        ev.target.closest('li').classList.add('busy');
        try {
          const r = await postLabel({ complaint_id: it.complaint_id, domain: d });
          out.className = 'ok';
          out.textContent = `${it.title.slice(0, 20)}：${labelOutcome(r)}`;
          ev.target.closest('li').remove();
          if (!$('#label-queue li.q-item')) loadQueue();
        } catch (err) {
          out.className = 'error';
          out.textContent = `标注失败：${err.message}`;
          ev.target.closest('li').classList.remove('busy');
        }
      },
    }))))));
}

function domainSelect(current, name) {
  return el('select', { name }, (state.domains || []).map((d) => el('option', { value: d, text: d, selected: d === current })));
}

function correctionBar(a) {
  if (state.me.role !== 'supervisor' || a.trigger !== 'crowd_concentration') return null;
  const form = el('form', { class: 'correct', id: 'd-correct' },
    el('label', {}, '更正问题领域 ', domainSelect(a.domain, 'domain')),
    el('button', { type: 'submit', id: 'correct-submit', text: '更正并按新领域改派' }),
    el('span', { id: 'correct-result', role: 'status' }));
  form.onsubmit = async (e) => {
    e.preventDefault();
    const out = $('#correct-result');
    out.className = '';
    out.textContent = '提交中…';
    try {
      const r = await postLabel({ issue_id: a.subject, domain: String(new FormData(form).get('domain')) });
      out.className = 'ok';
      out.textContent = labelOutcome(r);
      state.actResult = { id: a.alert_id, cls: 'ok', text: labelOutcome(r) };
      scheduleRefresh();
      if (state.openId === a.alert_id) renderDetail(a.alert_id);
    } catch (err) {
      out.className = 'error';
      out.textContent = `更正失败：${err.message}`;
    }
  };
  return form;
}

function complaintLabel(c) {
  if (state.me.role !== 'supervisor') return null;
  const sel = domainSelect(c.domain, 'domain');
  const out = el('span', { class: 'c-label-result', role: 'status' });
  sel.onchange = async () => {
    out.textContent = '…';
    try {
      const r = await postLabel({ complaint_id: c.complaint_id, domain: sel.value });
      out.className = 'ok';
      out.textContent = labelOutcome(r);
    } catch (err) {
      out.className = 'error';
      out.textContent = `标注失败：${err.message}`;
    }
  };
  return el('label', { class: 'c-label' }, '标注领域 ', sel, out);
}

// ---------------------------------------------------------------- board
function filterQuery() {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData($('#filters'))) if (String(v).trim()) p.set(k, v);
  return p.toString();
}

function fillSelect(sel, values) {
  const keep = sel.value;
  const first = sel.options[0];
  sel.replaceChildren(first, ...values.map((v) => el('option', { value: v, text: v })));
  if (values.includes(keep)) sel.value = keep;
}

async function loadBoard() {
  let data;
  try {
    ({ data } = await api(`/board/api/alerts?${filterQuery()}`));
  } catch (e) {
    if (e.status === 401) return logout();
    $('#board-note').textContent = `加载失败：${e.message}`;
    return;
  }
  fillSelect($('#f-domain'), data.facets.domains);
  fillSelect($('#f-district'), data.facets.districts);
  fillSelect($('#f-unit'), data.facets.units);
  state.units = data.facets.units;
  for (const level of ['yellow', 'red', 'green']) {
    const col = $(`#col-${level}`);
    const cards = data.cards.filter((c) => c.level === level);
    $(`#count-${level}`).textContent = data.counts[level] ?? cards.length;
    const box = $('.cards', col);
    box.replaceChildren(...(cards.length ? cards.map(card) : [el('p', { class: 'empty', text: '暂无' })]));
  }
  const shown = data.cards.length;
  $('#board-note').textContent = shown === data.total_visible
    ? `共 ${shown} 条预警` : `筛选后 ${shown} 条（共 ${data.total_visible} 条）`;
}

function card(c) {
  const badges = [
    el('span', { class: `badge status-${c.status}`, text: STATUS[c.status] || c.status }),
    c.overdue ? el('span', { class: 'badge overdue', text: '已逾期' }) : null,
    c.recurrent ? el('span', { class: 'badge recurrent', text: `屡治屡犯·第${c.recurrence}次` }) : null,
    c.document_no ? el('span', { class: 'badge doc', text: c.document_no }) : null,
  ];
  return el('article', {
    class: `card ${c.level}`, tabIndex: 0, 'data-alert-id': c.alert_id, 'data-level': c.level,
    'data-status': c.status, 'data-unit': c.unit,
    onclick: () => openDetail(c.alert_id),
    onkeydown: (e) => { if (e.key === 'Enter') openDetail(c.alert_id); },
  },
  el('div', { class: 'card-top' }, el('span', { class: 'trigger', text: c.trigger_label }), ...badges),
  el('p', { class: 'summary', text: c.summary }),
  el('p', { class: 'meta' }, `${c.unit} · ${c.district || '未知区县'} · ${c.domain || '未分类'}`),
  el('p', { class: 'meta' },
    `投诉 ${c.complaint_count} 件 / ${c.distinct_complainants} 人 · `,
    c.level === 'red' && c.reply_deadline ? `书面回复期限 ${c.reply_deadline}` : `办理期限 ${c.deadline}`),
  el('p', { class: 'id', text: c.alert_id }));
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    if (location.hash === '#dashboard') loadDashboard(); else loadBoard();
  }, 100);
}

// ---------------------------------------------------------------- detail
function table(head, rows, cls) {
  return el('table', { class: cls || '' },
    el('thead', {}, el('tr', {}, head.map((h) => el('th', { text: h })))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c ?? ''))))));
}

async function openDetail(id) {
  state.openId = id;
  const box = $('#detail');
  box.hidden = false;
  $('#d-title').textContent = id;
  await renderDetail(id);
}

function closeDetail() {
  state.openId = null;
  $('#detail').hidden = true;
  $('#d-body').replaceChildren();
}

async function renderDetail(id) {
  let d;
  try {
    ({ data: d } = await api(`/board/api/alerts/${encodeURIComponent(id)}`));
  } catch (e) {
    $('#d-body').replaceChildren(el('p', { class: 'error', text: `无法打开：${e.message}` }));
    return;
  }
  if (state.openId !== id) return;
  const a = d.alert;
  const ev = d.evidence;
  $('#d-title').replaceChildren(
    el('span', { class: `dot ${a.level}` }), `${LEVEL[a.level]} · ${STATUS[a.status] || a.status}`);
  const facts = [
    ['编号', a.alert_id], ['摘要', a.summary], ['触发', a.trigger === 'high_frequency' ? '单人高频投诉' : '群众诉求集中'],
    ['责任单位', a.unit], ['区县', a.district || '—'], ['领域', a.domain || '—'],
    ['办理期限', a.deadline], a.reply_deadline ? ['书面回复期限', a.reply_deadline] : null,
    ['投诉', `${a.complaint_count} 件，${a.distinct_complainants} 人`],
    ['关键词', (a.key_terms || []).join('、') || '—'],
    a.feedback ? ['单位反馈', a.feedback] : null,
    a.recurrence_of ? ['复发自', a.recurrence_of] : null,
  ].filter(Boolean);
  const parts = [
    el('dl', { class: 'facts', id: 'd-facts' }, facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })])),
    actionBar(a, d.actions),
    correctionBar(a),
    el('h3', { text: '流转记录' }),
    table(['#', '时间', '操作', '操作人', '颜色', '状态', '说明'],
      (a.history || []).map((t) => [String(t.seq), t.at.replace('T', ' ').slice(0, 19),
        ACTION[t.action] || t.action, `${t.actor}（${roleName(t.role)}）`,
        LEVEL[t.to_level] || t.to_level, STATUS[t.to_status] || t.to_status, t.reason]), 'history'),
  ];
  if (d.has_document) {
    parts.push(el('h3', { text: `行政执法监督建议书 ${a.document_no || ''}` }),
      el('iframe', { class: 'document', id: 'd-document', title: '监督建议书',
        src: `/board/api/alerts/${encodeURIComponent(a.alert_id)}/document` }));
  }
  parts.push(el('h3', { text: `证据投诉（${ev.found}/${ev.evidence_total} 件）` }),
    el('ol', { class: 'complaints', id: 'd-complaints' }, ev.complaints.map((c) => el('li', { 'data-complaint-id': c.complaint_id },
      el('div', { class: 'c-head' }, `${(c.received_at || '').slice(0, 16).replace('T', ' ')} · ${c.channel} · ${c.district || ''} ${c.place || ''}`,
        c.complainant ? el('span', { class: 'pseudonym', text: c.complainant }) : null,
        c.duplicate_of ? el('span', { class: 'badge', text: '重复' }) : null),
      el('strong', { text: c.title }), el('p', { text: c.body }), complaintLabel(c)))));
  const maxDay = Math.max(1, ...ev.timeline.map((t) => t.complaints));
  parts.push(el('h3', { text: `问题时间线：${ev.timeline_of || ''}` }),
    el('ul', { class: 'timeline', id: 'd-timeline' }, ev.timeline.map((t) => el('li', {},
      el('span', { class: 'day', text: t.day }),
      el('span', { class: 'bar' }, el('i', { style: `width:${Math.round((100 * t.complaints) / maxDay)}%` })),
      el('span', { class: 'n', text: `${t.complaints} 件 / ${t.complainants} 人` }),
      el('span', { class: 'titles', text: t.titles.join('；') })))));
  parts.push(el('h3', { text: '投诉人历史（按化名）' }),
    el('div', { id: 'd-people' }, ev.people.map((p) => el('details', { class: 'person' },
      el('summary', {}, el('span', { class: 'pseudonym', text: p.pseudonym }),
        ` 共 ${p.complaints} 件（本预警 ${p.in_alert} 件），${p.first || ''} 至 ${p.last || ''}；`,
        p.domains.slice(0, 3).map(([k, n]) => `${k} ${n}`).join('、')),
      el('ul', {}, p.recent.map((b) => el('li', { class: b.in_alert ? 'in' : '' }, `${b.day || ''} ${b.title}`)))))));
  if (ev.notes.length) parts.push(el('p', { class: 'note', text: ev.notes.join('；') }));
  $('#d-body').replaceChildren(...parts);
}

// The outcome of the last action stays visible when the detail is drawn again after it.
function resultLine(a) {
  const r = state.actResult && state.actResult.id === a.alert_id ? state.actResult : null;
  return el('p', { id: 'act-result', role: 'status', class: r ? r.cls : '', text: r ? r.text : '' });
}

function actionBar(a, actions) {
  const bar = el('div', { class: 'actions', id: 'd-actions' });
  if (!actions.length) {
    bar.append(el('p', { class: 'note', text: state.me.role === 'unit' ? '当前无需本单位操作' : '当前无可执行的操作' }),
      resultLine(a));
    return bar;
  }
  const form = el('form', { id: 'act-form', hidden: true });
  for (const k of actions) {
    bar.append(el('button', { type: 'button', 'data-action': k, text: BUTTON[k],
      class: k === 'escalate' ? 'danger' : '', onclick: () => actionForm(form, a, k) }));
  }
  bar.append(form, resultLine(a));
  return bar;
}

function actionForm(form, a, kind) {
  const fields = [];
  if (kind === 'assign') {
    const list = el('datalist', { id: 'units-list' }, state.units.map((u) => el('option', { value: u })));
    fields.push(el('label', {}, '改派至单位 ', el('input', { name: 'unit', required: true, list: 'units-list' })), list);
  }
  if (kind === 'verify') {
    fields.push(el('label', {}, '核实结论 ', el('select', { name: 'accepted' },
      el('option', { value: 'true', text: '整改到位，核实办结（绿色清零）' }),
      el('option', { value: 'false', text: '整改未到位，退回单位' }))));
  }
  if (kind === 'escalate') {
    fields.push(el('label', {}, '认定 ', el('select', { name: 'finding' },
      el('option', { value: 'inaction', text: '不作为' }), el('option', { value: 'misconduct', text: '乱作为' }))));
  }
  const needs = kind === 'feedback' || kind === 'escalate';
  const label = kind === 'feedback' ? '办理情况' : '说明';
  fields.push(el('label', { class: 'wide' }, label, el('textarea', { name: 'reason', rows: 3, required: needs })));
  form.replaceChildren(el('h4', { text: BUTTON[kind] }), ...fields,
    el('div', {}, el('button', { type: 'submit', id: 'act-submit', text: '提交' }),
      el('button', { type: 'button', class: 'link', text: '取消', onclick: () => { form.hidden = true; } })));
  form.hidden = false;
  form.onsubmit = async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const body = { reason: String(f.get('reason') || '') };
    if (kind === 'assign') body.unit = String(f.get('unit') || '');
    if (kind === 'verify') body.accepted = f.get('accepted') === 'true';
    if (kind === 'escalate') body.finding = String(f.get('finding'));
    const out = $('#act-result');
    out.className = '';
    out.textContent = '提交中…';
    state.actResult = null;
    try {
      const r = await api(`/api/alerts/${encodeURIComponent(a.alert_id)}/${kind}`, { method: 'POST', body });
      out.textContent = r.status === 202 ? '已提交，等待督办流程处理' : `已${BUTTON[kind]}`;
      out.className = 'ok';
      state.actResult = { id: a.alert_id, cls: 'ok', text: out.textContent };
      form.hidden = true;
      scheduleRefresh();
      if (state.openId === a.alert_id) renderDetail(a.alert_id);
    } catch (err) {
      out.textContent = `操作失败：${err.message}`;
      out.className = 'error';
    }
  };
}

// ---------------------------------------------------------------- dashboard
async function loadDashboard() {
  const date = $('#dash-date').value;
  let d;
  try {
    ({ data: d } = await api(`/board/api/dashboard${date ? `?date=${date}` : ''}`));
  } catch (e) {
    if (e.status === 401) return logout();
    $('#dash-notes').textContent = `加载失败：${e.message}`;
    return;
  }
  if (!date) $('#dash-date').value = d.date;
  const sign = (n) => (n > 0 ? `+${n}` : String(n));
  const num = (label, value, sub, cls) => el('div', { class: `num ${cls || ''}` },
    el('span', { class: 'label', text: label }), el('strong', { text: String(value) }), sub ? el('span', { class: 'sub', text: sub }) : null);
  $('#dash-numbers').replaceChildren(
    num('当日投诉', d.complaints, `较前一日 ${sign(d.change)}`),
    num('投诉人', d.complainants, `重复件 ${d.duplicates}`),
    num('黄色预警', d.board.yellow, `今日新增 ${d.board.opened_today}`, 'yellow'),
    num('红色督办', d.board.red, `今日升级 ${d.board.escalated_today}`, 'red'),
    num('绿色清零', d.board.green, `今日办结 ${d.board.closed_today}`, 'green'),
    num('逾期未办', d.board.overdue, `在办 ${d.board.open}`, d.board.overdue ? 'red' : ''));
  // The charts are drawn by duban (report charts, text escaped on the server).
  $('#dash-trend').innerHTML = d.trend_svg;
  $('#dash-districts').replaceChildren(
    table(['区县', '当日投诉', '前一日', '在办预警', '其中红色'], d.districts.map((x) => [
      el('span', { class: `heat h${x.heat}`, text: x.district }), String(x.complaints), String(x.previous),
      String(x.open_alerts), String(x.red_alerts)]), 'districts'));
  if (d.district_svg) {
    const div = el('div', { class: 'chart' });
    div.innerHTML = d.district_svg;
    $('#dash-districts').append(div);
  }
  $('#dash-hot').replaceChildren(d.hot_issues.length
    ? table(['问题', '地点', '区县', '领域', '投诉人', '投诉', '较前一日'], d.hot_issues.map((h) => [
      h.title || h.issue_id, h.place || '', h.district || '', h.domain || '', String(h.complainants), String(h.complaints), sign(h.growth)]), 'hot')
    : el('p', { class: 'empty', text: '本日无数据' }));
  $('#dash-notes').textContent = (d.has_data ? [] : ['本日无投诉数据']).concat(d.notes).join('；');
}

// ---------------------------------------------------------------- live
function connectEvents() {
  if (state.events) state.events.close();
  const es = new EventSource('/board/api/events');
  state.events = es;
  const live = $('#live');
  es.addEventListener('hello', () => { live.className = 'live on'; });
  es.addEventListener('alert', (m) => {
    live.className = 'live on';
    const ev = JSON.parse(m.data);
    scheduleRefresh();
    if (state.openId === ev.alert_id) renderDetail(ev.alert_id);
  });
  es.addEventListener('resync', () => scheduleRefresh());
  es.onerror = () => { live.className = 'live off'; };
}

// ---------------------------------------------------------------- wiring
$('#login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('#login-error').textContent = '';
  try {
    await login($('#token').value.trim());
  } catch (err) {
    $('#login-error').textContent = `登录失败：${err.message}`;
  }
});
$('#logout').addEventListener('click', logout);
$('#d-close').addEventListener('click', closeDetail);
document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeDetail(); });
$('#filters').addEventListener('change', () => loadBoard());
$('#filters').addEventListener('input', (e) => { if (e.target.id === 'f-q') scheduleRefresh(); });
$('#filters').addEventListener('reset', () => setTimeout(loadBoard, 0));
$('#dash-date').addEventListener('change', loadDashboard);
window.addEventListener('hashchange', () => { if (state.me) route(); });

// A session from an earlier login in this browser (the cookie) opens the board directly.
(async () => {
  const { data } = await api('/board/api/session');
  if (data) start(data);
})();
