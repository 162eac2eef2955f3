import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { t, fmtAgo } from '../i18n.js';
import { useLive } from '../live.js';
import { Badge, ErrorBox, Link, Loading, Pager, Progress } from '../components.jsx';
import { useFetch } from '../components.jsx';

const kPage = 20;

// A vehicle is a device that reports its VIN (aloft-vehicle does, with a version per ECU as its
// modules); its campaign is its open action, whose feedback carries a line per ECU.
function Vehicle({ v, action }) {
  const ecus = Object.entries(v.versions ?? {}).sort((a, b) => a[0].localeCompare(b[0], undefined, { numeric: true }));
  const last = action?.events?.[action.events.length - 1];
  return (
    <li class="card vehicle" data-vehicle={v.name}>
      <h2>
        <Link href={`/devices/${enc(v.name)}`}>{v.name}</Link> <span class="muted">VIN {String(v.attributes?.vin ?? '')}</span>
      </h2>
      <p class="muted">
        {v.device_type} · {t('vehicles.ecus', { n: ecus.length })} · {t('devices.last_seen')} {fmtAgo(v.last_seen)}
      </p>
      <table>
        <caption class="sr-only">{t('device.ecus')}</caption>
        <thead>
          <tr>
            <th scope="col">ECU</th>
            <th scope="col">{t('devices.version')}</th>
          </tr>
        </thead>
        <tbody>
          {ecus.map(([ecu, version]) => (
            <tr key={ecu}>
              <td>{ecu}</td>
              <td>{version}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {action ? (
        <section aria-label={t('vehicles.campaign')}>
          <h3>
            {t('vehicles.campaign')}: {action.release} <Badge state={action.state} />
          </h3>
          <Progress value={(action.progress ?? 0) / 100} label={t('vehicles.campaign')} />
          {last?.details ? <pre class="feedback">{last.details}</pre> : null}
        </section>
      ) : null}
    </li>
  );
}

export function Vehicles() {
  const [offset, setOffset] = useState(0);
  const [version, setVersion] = useState(0);
  const list = useFetch(`/api/v1/devices?attribute=vin&limit=${kPage}&offset=${offset}`, version);
  const [actions, setActions] = useState({});
  const names = (list.data?.items ?? []).map((v) => v.name);
  useLive(['actions'], () => setVersion((x) => x + 1), { minMs: 1000, match: (k, d) => d.more || (d.devices ?? []).some((n) => names.includes(n)) });
  useEffect(() => {
    let gone = false;
    const items = list.data?.items ?? [];
    Promise.all(
      items.map((v) =>
        api('GET', `/api/v1/devices/${enc(v.name)}/actions?events=1&limit=1`).then(
          (a) => [v.name, a[0] ?? null],
          () => [v.name, null],
        ),
      ),
    ).then((pairs) => !gone && setActions(Object.fromEntries(pairs)));
    return () => {
      gone = true;
    };
  }, [list.data]);
  return (
    <>
      <h1>{t('vehicles.title')}</h1>
      <ErrorBox error={list.error} />
      <Loading when={!list.data && list.loading} />
      {list.data && list.data.total === 0 ? <p class="muted">{t('vehicles.none')}</p> : null}
      <ul class="vehicles">
        {(list.data?.items ?? []).map((v) => (
          <Vehicle key={v.name} v={v} action={actions[v.name]} />
        ))}
      </ul>
      {list.data && list.data.total > kPage ? <Pager offset={offset} limit={kPage} total={list.data.total} onPage={setOffset} /> : null}
    </>
  );
}
