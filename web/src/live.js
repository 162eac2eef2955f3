// The live feed: one EventSource on /api/v1/events for the whole page (docs/dashboard.md). Pages
// say which kinds of change they show (useLive); the feed calls them when one arrives, at most
// once per `minMs` each, so that a burst of changes costs one fetch.
import { useEffect, useRef, useState } from 'preact/hooks';

const listeners = new Set();
let source = null;
let state = 'connecting';
const stateListeners = new Set();

function setState(s) {
  state = s;
  for (const fn of stateListeners) fn(s);
}

const kinds = ['rollout', 'actions', 'delta', 'devices', 'releases', 'audit'];

export function startLive() {
  if (source) return;
  source = new EventSource('/api/v1/events');
  source.addEventListener('hello', () => setState('live'));
  source.onerror = () => setState('reconnecting');
  for (const kind of kinds) {
    source.addEventListener(kind, (e) => {
      let data = {};
      try {
        data = JSON.parse(e.data);
      } catch {
        data = {};
      }
      window.__aloftLiveEvents = (window.__aloftLiveEvents ?? 0) + 1;
      for (const l of listeners) l(kind, data);
    });
  }
}

export function stopLive() {
  source?.close();
  source = null;
  setState('connecting');
}

export function useLiveState() {
  const [s, set] = useState(state);
  useEffect(() => {
    stateListeners.add(set);
    return () => stateListeners.delete(set);
  }, []);
  return s;
}

// Calls fn(kind, data) for the kinds listed whose `match(kind, data)` (when given) is true.
export function useLive(kindsWanted, fn, { minMs = 1000, match } = {}) {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const matchRef = useRef(match);
  matchRef.current = match;
  useEffect(() => {
    let last = 0;
    let timer = null;
    const l = (kind, data) => {
      if (!kindsWanted.includes(kind)) return;
      if (matchRef.current && !matchRef.current(kind, data)) return;
      const wait = last + minMs - Date.now();
      if (wait <= 0) {
        last = Date.now();
        fnRef.current(kind, data);
      } else if (!timer) {
        timer = setTimeout(() => {
          timer = null;
          last = Date.now();
          fnRef.current(kind, data);
        }, wait);
      }
    };
    listeners.add(l);
    return () => {
      listeners.delete(l);
      clearTimeout(timer);
    };
  }, [kindsWanted.join(',')]);
}
