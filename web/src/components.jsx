// The parts every page uses: navigation links, data fetching, tables, paging, state badges,
// errors, and charts (uPlot). Text a user or device wrote is only ever rendered as text (JSX
// escapes it); the dashboard never sets HTML from data.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api } from './api.js';
import { t, fmtNum } from './i18n.js';

// ---- navigation (the History API; aloftd answers every page's path with index.html) ----

const navListeners = new Set();
export function navigate(to) {
  if (to === location.pathname + location.search) return;
  history.pushState(null, '', to);
  for (const fn of navListeners) fn();
}
window.addEventListener('popstate', () => {
  for (const fn of navListeners) fn();
});

export function useLocation() {
  const [, set] = useState(0);
  useEffect(() => {
    const fn = () => set((n) => n + 1);
    navListeners.add(fn);
    return () => navListeners.delete(fn);
  }, []);
  return { path: location.pathname, params: new URLSearchParams(location.search) };
}

export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}

// ---- forms ----

// What an input event's element holds: a checkbox's checked, any other input's value.
export const inputValue = (e) => (e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value);

// A form's fields as one object: [values, field, setValues]; field(k) is the onInput/onChange
// handler that sets values[k]. `initial` may be a function, as for useState.
export function useForm(initial) {
  const [values, setValues] = useState(initial);
  const field = (k) => (e) => {
    const v = inputValue(e);
    setValues((was) => ({ ...was, [k]: v }));
  };
  return [values, field, setValues];
}

// ---- data ----

// GETs `path` (again when `path` or `version` changes); reload() fetches it again.
export function useFetch(path, version = 0) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const load = useCallback(() => {
    if (!path) return;
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    api('GET', path).then(
      (data) => n === seq.current && setState({ data, error: null, loading: false }),
      (error) => n === seq.current && setState((s) => ({ data: s.data, error, loading: false })),
    );
  }, [path]);
  useEffect(load, [load, version]);
  return { ...state, reload: load };
}

// ---- display ----

export function ErrorBox({ error }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {t('error')}: {error.message}
    </p>
  );
}

export function Loading({ when }) {
  return when ? <p class="muted" aria-live="polite">{t('loading')}</p> : null;
}

const stateClass = {
  succeeded: 'ok',
  success: 'ok',
  completed: 'ok',
  idle: 'ok',
  running: 'info',
  updating: 'info',
  pending: 'info',
  downloading: 'info',
  installing: 'info',
  scheduled: 'info',
  'awaiting-approval': 'warn',
  'awaiting-confirmation': 'warn',
  paused: 'warn',
  'never-seen': 'muted',
  canceled: 'muted',
  cancelled: 'muted',
  failed: 'bad',
  'rolled-back': 'bad',
  denied: 'bad',
  expired: 'muted',
};

export function Badge({ state, label }) {
  const translated = t(`state.${state}`);
  const text = label ?? (translated === `state.${state}` ? state : translated);
  return <span class={`badge ${stateClass[state] ?? 'muted'}`}>{text}</span>;
}

// `captionHidden`: the caption is for screen readers only (a heading above already says it).
export function Table({ caption, columns, rows, empty, captionHidden }) {
  return (
    <div class="table-wrap">
      <table>
        <caption class={captionHidden ? 'sr-only' : ''}>{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" key={c.key} class={c.num ? 'num' : ''}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td colSpan={columns.length} class="muted">
                {empty ?? t('none')}
              </td>
            </tr>
          ) : (
            rows.map((r, i) => (
              <tr key={r.key ?? i}>
                {columns.map((c) => (
                  <td key={c.key} class={c.num ? 'num' : ''}>
                    {c.render ? c.render(r) : r[c.key]}
                  </td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

export function Pager({ offset, limit, total, onPage }) {
  const to = Math.min(offset + limit, total);
  return (
    <nav class="pager" aria-label={t('page.of', { from: offset + 1, to, total })}>
      <button type="button" disabled={offset === 0} onClick={() => onPage(Math.max(0, offset - limit))}>
        ‹ {t('page.prev')}
      </button>
      <span aria-live="polite">
        {total === 0 ? '' : t('page.of', { from: fmtNum(offset + 1), to: fmtNum(to), total: fmtNum(total) })}
      </span>
      <button type="button" disabled={to >= total} onClick={() => onPage(offset + limit)}>
        {t('page.next')} ›
      </button>
    </nav>
  );
}

export function Progress({ value, label }) {
  const pct = Math.max(0, Math.min(100, Math.round(value * 100)));
  return (
    <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow={pct} aria-label={label}>
      <div class="bar" style={{ width: `${pct}%` }} />
      <span>{pct} %</span>
    </div>
  );
}

// A rollout's waves: each one's progress and counts (overview, rollout).
export function WaveBars({ status }) {
  return (
    <ol class="waves">
      {(status.waves ?? []).map((w) => {
        const done = (w.states?.succeeded ?? 0) + (w.states?.failed ?? 0);
        return (
          <li key={w.wave} class={w.wave === status.wave ? 'current' : ''}>
            <span>{t('rollout.wave_n', { n: w.wave })}</span>
            <Progress value={w.devices ? done / w.devices : 0} label={t('rollout.wave_n', { n: w.wave })} />
            <span class="muted">
              {fmtNum(w.states?.succeeded ?? 0)} ✓ · {fmtNum(w.states?.failed ?? 0)} ✗ · {fmtNum(w.devices)}
            </span>
          </li>
        );
      })}
    </ol>
  );
}

// ---- charts ----

const palette = ['#1d4ed8', '#b45309', '#047857', '#7c3aed', '#be123c', '#0e7490', '#4d7c0f', '#a21caf'];

function barsPaths() {
  return uPlot.paths.bars({ size: [0.6, 64] });
}

// A bar chart of `values` under `labels` (category axis); `label` names it for screen readers,
// which also get the numbers as a table.
export function BarChart({ label, labels, values, height = 220 }) {
  const el = useRef(null);
  useEffect(() => {
    if (!el.current || labels.length === 0) return undefined;
    const xs = labels.map((_, i) => i);
    const opts = {
      width: Math.max(280, el.current.clientWidth || 600),
      height,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        { values: (u, splits) => splits.map((v) => labels[v] ?? ''), splits: () => xs, gap: 4, stroke: '#374151' },
        { stroke: '#374151', grid: { stroke: '#e5e7eb' } },
      ],
      series: [{}, { label: t('chart.devices'), fill: palette[0] + 'cc', stroke: palette[0], paths: barsPaths(), points: { show: false } }],
    };
    const plot = new uPlot(opts, [xs, values], el.current);
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.current.clientWidth), height }));
    ro.observe(el.current);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [labels.join('\u0000'), values.join(','), height]);
  return (
    <figure class="chart">
      <div ref={el} role="img" aria-label={label} />
      <figcaption class="sr-only">
        {labels.map((l, i) => `${l}: ${values[i]}`).join('; ')}
      </figcaption>
    </figure>
  );
}

// Lines over time: `series` = [{label, values}], `times` in seconds.
export function TimeChart({ label, times, series, height = 220 }) {
  const el = useRef(null);
  useEffect(() => {
    if (!el.current || times.length === 0) return undefined;
    const opts = {
      width: Math.max(280, el.current.clientWidth || 600),
      height,
      scales: { y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{ stroke: '#374151' }, { stroke: '#374151', grid: { stroke: '#e5e7eb' } }],
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: palette[i % palette.length], width: 2 }))],
    };
    const plot = new uPlot(opts, [times, ...series.map((s) => s.values)], el.current);
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.current.clientWidth), height }));
    ro.observe(el.current);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [times.join(','), series.map((s) => s.values.join(',')).join(';'), height]);
  return (
    <figure class="chart">
      <div ref={el} role="img" aria-label={label} />
    </figure>
  );
}
