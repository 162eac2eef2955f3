// The Aloft dashboard (docs/dashboard.md): a single-page application on aloftd's own API. It
// signs in (a user's password or an API token) into a session cookie, shows what the server's
// roles allow, and stays current through the server's live feed.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import './style.css';
import { api, setCsrf, whenSignedOut } from './api.js';
import { t, languages, currentLang, setLang } from './i18n.js';
import { Link, useLocation, navigate } from './components.jsx';
import { can } from './roles.js';
import { startLive, stopLive, useLiveState } from './live.js';
import { SignIn } from './pages/signin.jsx';
import { Overview } from './pages/overview.jsx';
import { Devices, DeviceDetail } from './pages/devices.jsx';
import { Releases, ReleaseDetail } from './pages/releases.jsx';
import { Rollouts, RolloutDetail, RolloutCreate } from './pages/rollouts.jsx';
import { Vehicles } from './pages/vehicles.jsx';
import { Audit } from './pages/audit.jsx';


function route(path, session) {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  switch (parts[0]) {
    case undefined:
      return <Overview session={session} />;
    case 'devices':
      return parts[1] ? <DeviceDetail name={parts[1]} /> : <Devices />;
    case 'releases':
      return parts[2] ? <ReleaseDetail name={parts[1]} version={parts[2]} /> : <Releases session={session} />;
    case 'rollouts':
      if (parts[1] === 'new') return <RolloutCreate session={session} />;
      return parts[1] ? <RolloutDetail name={parts[1]} session={session} /> : <Rollouts session={session} />;
    case 'vehicles':
      return <Vehicles />;
    case 'audit':
      return <Audit session={session} />;
    default:
      return <p>404: {path}</p>;
  }
}

const nav = [
  ['/', 'nav.overview'],
  ['/devices', 'nav.devices'],
  ['/releases', 'nav.releases'],
  ['/rollouts', 'nav.rollouts'],
  ['/vehicles', 'nav.vehicles'],
  ['/audit', 'nav.audit', 'admin'],
];

function LiveIndicator() {
  const s = useLiveState();
  return (
    <span class={`live ${s}`} role="status" aria-live="polite">
      <span class="dot" aria-hidden="true" />
      {t(`live.${s}`)}
    </span>
  );
}

function App() {
  const [session, setSession] = useState(undefined); // undefined: asking; null: signed out
  const [, setLangState] = useState(currentLang());
  const { path } = useLocation();

  useEffect(() => {
    whenSignedOut(() => {
      stopLive();
      setSession(null);
    });
    api('GET', '/api/v1/session').then(
      (s) => {
        setCsrf(s.csrf);
        setSession(s);
      },
      () => setSession(null),
    );
  }, []);
  useEffect(() => {
    if (session) startLive();
    // After signing in, the keyboard starts again from the top ("skip to content" first).
    if (session) {
      // (focusing the body moves the browser's starting point of Tab there)
      document.body.tabIndex = -1;
      document.body.focus();
      document.body.blur();
      document.body.removeAttribute('tabindex');
    }
  }, [session]);
  // A new page moves the focus to its content, as a page load would put a reader there.
  const firstPath = useRef(path);
  useEffect(() => {
    if (path === firstPath.current) return;
    firstPath.current = null;
    document.getElementById('main')?.focus();
  }, [path]);
  useEffect(() => {
    document.title = `${t('app.title')}`;
  });

  const changeLang = (e) => {
    setLang(e.currentTarget.value);
    setLangState(e.currentTarget.value);
  };
  const langSelect = (
    <label class="lang">
      <span class="sr-only">{t('lang.label')}</span>
      <select value={currentLang()} onChange={changeLang} aria-label={t('lang.label')}>
        {languages.map((l) => (
          <option value={l.code} key={l.code} lang={l.code}>
            {l.name}
          </option>
        ))}
      </select>
    </label>
  );

  if (session === undefined) return <p class="muted">{t('loading')}</p>;
  if (session === null) {
    return (
      <div class="signin-page">
        <header class="signin-header">{langSelect}</header>
        <main id="main">
          <SignIn
            onSignedIn={(s) => {
              setCsrf(s.csrf);
              setSession(s);
            }}
          />
        </main>
      </div>
    );
  }
  const signOut = async () => {
    try {
      await api('DELETE', '/api/v1/session');
    } finally {
      stopLive();
      setCsrf(null);
      setSession(null);
      navigate('/');
    }
  };
  const active = (href) => (href === '/' ? path === '/' : path.startsWith(href));
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link href="/" class="brand">
          <img src="/assets/icon.svg" alt="" width="24" height="24" />
          Aloft
        </Link>
        <nav aria-label={t('nav.main')}>
          <ul>
            {nav
              .filter(([, , role]) => !role || can(session, role))
              .map(([href, key]) => (
                <li key={href}>
                  <Link href={href} aria-current={active(href) ? 'page' : undefined}>
                    {t(key)}
                  </Link>
                </li>
              ))}
          </ul>
        </nav>
        <div class="who">
          <LiveIndicator />
          {langSelect}
          <span class="muted" data-testid="who">
            {t('signed_in_as', { actor: session.actor, role: session.role })}
          </span>
          <button type="button" onClick={signOut}>
            {t('signout')}
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {route(path, session)}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app'));
