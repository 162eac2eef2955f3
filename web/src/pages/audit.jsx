import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { download, exportStats, toCsv } from '../csv.js';
import { t, fmtTime } from '../i18n.js';
import { useLive } from '../live.js';
import { can } from '../roles.js';
import { ErrorBox, Loading, Pager, Table, useFetch } from '../components.jsx';

const kPage = 50;

export function Audit({ session }) {
  const [offset, setOffset] = useState(0);
  const [version, setVersion] = useState(0);
  const admin = can(session, 'admin');
  const list = useFetch(admin ? `/api/v1/audit?limit=${kPage}&offset=${offset}` : null, version);
  const [error, setError] = useState(null);
  useLive(['audit'], () => offset === 0 && setVersion((v) => v + 1));
  const exportAudit = async () => {
    const all = [];
    for (let o = 0; ; o += 1000) {
      const page = await api('GET', `/api/v1/audit?limit=1000&offset=${o}`);
      all.push(...page);
      if (page.length < 1000) break;
    }
    download('aloft-audit.csv', toCsv(['at', 'actor', 'action', 'object', 'details'], all.map((e) => [e.at, e.actor, e.action, e.object, e.details])));
  };
  const run = (fn) => () => fn().catch(setError);
  return (
    <>
      <h1>{t('audit.title')}</h1>
      <p class="buttons">
        <button type="button" onClick={run(exportStats)}>
          {t('audit.csv')}
        </button>
        {admin ? (
          <button type="button" onClick={run(exportAudit)}>
            {t('audit.csv_audit')}
          </button>
        ) : null}
      </p>
      <ErrorBox error={error ?? list.error} />
      {!admin ? <p class="muted">{t('audit.admin_only')}</p> : null}
      <Loading when={admin && !list.data && list.loading} />
      {list.data ? (
        <>
          <Table
            caption={t('audit.title')}
            columns={[
              { key: 'at', label: t('audit.at'), render: (e) => <time dateTime={e.at}>{fmtTime(e.at)}</time> },
              { key: 'actor', label: t('audit.actor') },
              { key: 'action', label: t('audit.action') },
              { key: 'object', label: t('audit.object') },
            ]}
            rows={list.data.map((e) => ({ ...e, key: e.id }))}
          />
          <Pager offset={offset} limit={kPage} total={offset + list.data.length + (list.data.length === kPage ? 1 : 0)} onPage={setOffset} />
        </>
      ) : null}
    </>
  );
}
