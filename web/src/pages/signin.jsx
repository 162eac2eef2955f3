import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { ErrorBox } from '../components.jsx';

export function SignIn({ onSignedIn }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (body) => {
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await api('POST', '/api/v1/session', body));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="signin card" aria-labelledby="signin-title">
      <h1 id="signin-title">{t('signin.title')}</h1>
      <ErrorBox error={error} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          submit({ user, password });
        }}
      >
        <label>
          {t('signin.user')}
          <input name="user" autocomplete="username" required value={user} onInput={(e) => setUser(e.currentTarget.value)} />
        </label>
        <label>
          {t('signin.password')}
          <input
            name="password"
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {t('signin.submit')}
        </button>
      </form>
      <p class="muted">{t('signin.or')}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          submit({ token: token.trim() });
        }}
      >
        <label>
          {t('signin.token')}
          <input name="token" type="password" autocomplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>
          {t('signin.token_submit')}
        </button>
      </form>
    </section>
  );
}
