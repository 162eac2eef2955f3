import { useState } from 'preact/hooks';
import { enc, upload } from '../api.js';
import { t, fmtBytes, fmtTime, fmtNum } from '../i18n.js';
import { useLive } from '../live.js';
import { can } from '../roles.js';
import { Badge, ErrorBox, Link, Loading, Progress, Table, useFetch } from '../components.jsx';

function Upload({ onDone }) {
  const [file, setFile] = useState(null);
  const [pct, setPct] = useState(null);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    if (!file) return;
    setError(null);
    setDone(null);
    setPct(0);
    try {
      const r = await upload(`/api/v1/releases?filename=${enc(file.name)}`, file, setPct);
      setDone(r);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setPct(null);
    }
  };
  return (
    <form class="card upload" onSubmit={submit} aria-labelledby="upload-title">
      <h2 id="upload-title">{t('releases.upload')}</h2>
      <label>
        {t('releases.file')}
        <input type="file" name="package" accept=".aloft" required onChange={(e) => setFile(e.currentTarget.files[0] ?? null)} />
      </label>
      <button type="submit" class="primary" disabled={!file || pct !== null}>
        {t('releases.upload')}
      </button>
      {pct !== null ? <Progress value={pct} label={t('releases.uploading', { pct: Math.round(pct * 100) })} /> : null}
      <ErrorBox error={error} />
      {done ? <p role="status">{t('releases.uploaded', { id: done.id })}</p> : null}
    </form>
  );
}

export function Releases({ session }) {
  const [version, setVersion] = useState(0);
  const list = useFetch('/api/v1/releases', version);
  useLive(['releases'], () => setVersion((v) => v + 1));
  return (
    <>
      <h1>{t('releases.title')}</h1>
      {can(session, 'release') ? <Upload onDone={() => setVersion((v) => v + 1)} /> : null}
      <ErrorBox error={list.error} />
      <Loading when={!list.data && list.loading} />
      <Table
        caption={t('releases.title')}
        columns={[
          { key: 'id', label: t('releases.id'), render: (r) => <Link href={`/releases/${enc(r.name)}/${enc(r.version)}`}>{r.id}</Link> },
          { key: 'types', label: t('releases.types'), render: (r) => (r.device_types ?? []).join(', ') },
          { key: 'size', label: t('releases.size'), num: true, render: (r) => fmtBytes(r.size) },
          { key: 'signed', label: t('releases.signed'), render: (r) => (r.kind === 'package' ? t('yes') : t('no')) },
          { key: 'enabled', label: t('releases.enabled'), render: (r) => (r.enabled ? t('yes') : t('no')) },
          { key: 'created', label: t('releases.created'), render: (r) => fmtTime(r.created) },
        ]}
        rows={(list.data ?? []).map((r) => ({ ...r, key: r.id }))}
      />
    </>
  );
}

export function ReleaseDetail({ name, version: ver }) {
  const [version, setVersion] = useState(0);
  const rel = useFetch(`/api/v1/releases/${enc(name)}/${enc(ver)}`, version);
  useLive(['delta'], () => setVersion((v) => v + 1), { match: (k, d) => d.release === `${name} ${ver}` });
  const r = rel.data;
  const signed = r?.manifest?.signed;
  const fullSize = (signed?.components ?? []).reduce((n, c) => n + (c.payload?.size ?? 0), 0) || r?.size;
  return (
    <>
      <h1>{t('release.title', { id: `${name}@${ver}` })}</h1>
      <ErrorBox error={rel.error} />
      <Loading when={!r && rel.loading} />
      {r ? (
        <>
          <dl class="facts">
            <dt>{t('releases.types')}</dt>
            <dd>{(r.device_types ?? []).join(', ')}</dd>
            <dt>{t('releases.size')}</dt>
            <dd>{fmtBytes(r.size)}</dd>
            <dt>{t('releases.created')}</dt>
            <dd>
              {fmtTime(r.created)} · {r.created_by}
            </dd>
          </dl>
          <h2>{t('release.hashes')}</h2>
          <dl class="facts mono">
            <dt>SHA-256</dt>
            <dd>{r.sha256}</dd>
            <dt>SHA-1</dt>
            <dd>{r.sha1}</dd>
            <dt>MD5</dt>
            <dd>{r.md5}</dd>
          </dl>
          <Table
            caption={t('release.signatures')}
            columns={[
              { key: 'keyid', label: t('release.keyid'), render: (s) => <code>{s.keyid}</code> },
              { key: 'method', label: t('release.method') },
            ]}
            rows={(r.manifest?.signatures ?? []).map((s) => ({ ...s, key: s.keyid }))}
          />
          <Table
            caption={t('release.components')}
            columns={[
              { key: 'name', label: t('device.module') },
              { key: 'type', label: 'type' },
              { key: 'size', label: t('releases.size'), num: true, render: (c) => fmtBytes(c.image?.size) },
              { key: 'sha', label: 'SHA-256', render: (c) => <code>{c.image?.sha256}</code> },
            ]}
            rows={(signed?.components ?? []).map((c) => ({ ...c, key: c.name }))}
          />
          <Table
            caption={t('release.deltas')}
            empty={t('release.no_deltas')}
            columns={[
              { key: 'base_version', label: t('release.delta_base') },
              { key: 'state', label: t('action.state'), render: (d) => <Badge state={d.state === 'ready' ? 'succeeded' : d.state} label={t(`state.${d.state}`)} /> },
              { key: 'size', label: t('release.delta_size'), num: true, render: (d) => fmtBytes(d.size) },
              {
                key: 'saving',
                label: t('release.delta_saving'),
                num: true,
                render: (d) => (d.size && fullSize ? `${fmtNum(Math.round((1000 * d.size) / fullSize) / 10)} %` : ''),
              },
            ]}
            rows={(r.deltas ?? []).map((d) => ({ ...d, key: d.base_version }))}
          />
        </>
      ) : null}
    </>
  );
}
