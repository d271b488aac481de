// etcdlite status page: the cluster (from api/cluster on the serving
// member), a key browser and a live watch (from the v2 keys API). Every
// URL is relative to the page, so it works through any member and behind a
// proxy. Data from the cluster is only ever placed with textContent.
'use strict';
(() => {
  const REFRESH_MS = 2000;  // cluster and stats
  const KEYS_MS = 3000;     // the open directory
  const MAX_EVENTS = 200;   // watch events kept on screen

  const $ = (id) => document.getElementById(id);

  // el makes an element with a class and text (never HTML).
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // --- fetching, with HTTP Basic once the user has signed in ---

  let authHeader = null; // "Basic ..." after sign-in; kept in memory only
  let authUser = '';

  class AuthError extends Error {}

  // api fetches a URL relative to the page and throws AuthError on 401.
  async function api(url, opts = {}) {
    const headers = {};
    if (authHeader) headers.Authorization = authHeader;
    // same-origin credentials (the default) still go along, for a proxy in
    // front that has its own sign-in
    const r = await fetch(url, { ...opts, headers, cache: 'no-store' });
    if (r.status === 401) {
      // the keys API's "event index cleared" is errorCode 401 with HTTP 400;
      // an HTTP 401 is the auth layer refusing
      throw new AuthError(authHeader ? 'user ' + authUser + ' may not read this' : 'sign in to read keys');
    }
    return r;
  }

  // keysURL is the keys API's URL of a store path, each segment escaped.
  function keysURL(p) {
    const segs = p.split('/').filter((s) => s !== '').map(encodeURIComponent);
    return '../v2/keys/' + segs.join('/');
  }

  // --- sign-in ---

  const login = $('login');

  function askCredentials(why) {
    if (why) $('login-why').textContent = why;
    if (!login.open) login.showModal();
    $('login-user').focus();
  }

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    authUser = $('login-user').value;
    const bytes = new TextEncoder().encode(authUser + ':' + $('login-pass').value);
    authHeader = 'Basic ' + btoa(String.fromCharCode(...bytes));
    $('login-pass').value = '';
    login.close();
    $('signin').textContent = authUser + ' \u00b7 switch user';
    $('signin').hidden = false;
    refreshCluster();
    refreshKeys();
    restartWatch();
  });
  $('login-cancel').addEventListener('click', () => {
    login.close();
    $('signin').hidden = false;
  });
  $('signin').addEventListener('click', () => askCredentials('Sign in as another user.'));

  // authFailed shows why a read was refused and, the first time, asks.
  let asked = false;
  function authFailed(err) {
    $('signin').hidden = false;
    if (!asked && !authHeader) {
      asked = true;
      askCredentials('This cluster has authentication enabled: sign in to read its keys.');
    }
    return err.message;
  }

  // --- cluster, members, stats ---

  let lastStore = null;     // the previous store counters and when, for rates
  let clusterOK = 0;        // when api/cluster last answered

  const num = (n) => (n === undefined || n === null ? '\u2013' : Number(n).toLocaleString('en-US'));

  let clusterBusy = false;
  async function refreshCluster() {
    if (clusterBusy) return;
    clusterBusy = true;
    try {
      const r = await api('api/cluster', { signal: AbortSignal.timeout(8000) });
      if (!r.ok) throw new Error('api/cluster: ' + r.status);
      const c = await r.json();
      clusterOK = Date.now();
      renderCluster(c);
    } catch (e) {
      if (e instanceof AuthError) authFailed(e);
      const live = $('live');
      live.className = 'live off';
      live.textContent = e instanceof AuthError ? 'sign in' : 'disconnected';
      live.title = String(e.message || e);
    } finally {
      clusterBusy = false;
    }
  }

  function memberName(c, id) {
    const m = c.members.find((x) => x.id === id);
    return m && m.name ? m.name : id;
  }

  function renderCluster(c) {
    const live = $('live');
    live.className = 'live on';
    live.textContent = 'live';
    live.title = 'updated ' + new Date().toLocaleTimeString();
    const self = c.members.find((m) => m.id === c.self);
    $('via').textContent = self && self.name ? 'via ' + self.name : '';
    document.title = 'etcdlite \u00b7 ' + (c.leader ? memberName(c, c.leader) + ' leads' : 'no leader');
    $('cluster-id').textContent = c.clusterId;
    const ln = $('leader-name');
    ln.textContent = c.leader ? memberName(c, c.leader) : 'election';
    ln.className = c.leader ? 'badge leader' : 'badge warn';
    $('term').textContent = num(c.term);
    $('etcd-index').textContent = self && self.status ? num(self.status.etcdIndex) : '\u2013';

    const healthy = c.members.filter((m) => m.status && m.status.healthy).length;
    const hs = $('health-sum');
    hs.textContent = healthy + ' / ' + c.members.length + ' healthy';
    hs.className = 'badge ' + (healthy === c.members.length ? 'ok' : healthy * 2 > c.members.length ? 'warn' : 'bad');
    $('member-count').textContent = c.members.length;
    const list = $('member-list');
    const ms = c.members.slice().sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
    list.replaceChildren(...ms.map((m) => memberCard(c, m)));
    renderStore(c, self);
    renderRaft(c);
  }

  function memberCard(c, m) {
    const st = m.status;
    const stats = st ? st.stats || {} : {};
    const isLeader = m.id === c.leader;
    const card = el('article', 'card');
    card.dataset.member = m.name || m.id;
    card.dataset.role = isLeader ? 'leader' : st ? 'follower' : 'offline';
    if (isLeader) card.classList.add('is-leader');
    if (!st || !st.healthy) card.classList.add('down');

    const head = el('div', 'card-head');
    head.append(el('span', 'mname', m.name || '(unstarted)'));
    if (m.id === c.self) head.append(el('span', 'here', 'this page'));
    const role = el('span', 'badge role', isLeader ? 'leader' : st ? 'follower' : 'offline');
    if (isLeader) role.classList.add('leader');
    if (!st) role.classList.add('bad');
    head.append(role);
    card.append(head);

    let health;
    if (!st) health = el('span', 'health bad', 'unreachable');
    else if (st.healthy) health = el('span', 'health ok', 'healthy');
    else health = el('span', 'health bad', 'unhealthy');
    card.append(health);

    const facts = el('dl', 'facts');
    const fact = (k, v) => { facts.append(el('dt', '', k), el('dd', 'mono', v)); };
    fact('id', m.id);
    fact('client', (m.clientURLs || []).join(', ') || '\u2013');
    fact('peer', (m.peerURLs || []).join(', ') || '\u2013');
    if (stats.startTime) fact('up since', new Date(stats.startTime).toLocaleString());
    card.append(facts);

    if (st) {
      const nums = el('div', 'nums');
      const n = (k, v) => { const d = el('div'); d.append(el('span', '', k), el('span', '', v)); nums.append(d); };
      n('raft index', num(st.raftIndex));
      n('etcd index', num(st.etcdIndex));
      n('term', num(st.term));
      card.append(nums);
    }
    if (m.error) card.append(el('div', 'err', m.error));
    return card;
  }

  // the store's counters, as columns: successes and failures
  const STORE_OPS = [
    ['getsSuccess', 'getsFail'], ['setsSuccess', 'setsFail'], ['createSuccess', 'createFail'],
    ['updateSuccess', 'updateFail'], ['deleteSuccess', 'deleteFail'],
    ['compareAndSwapSuccess', 'compareAndSwapFail'], ['compareAndDeleteSuccess', 'compareAndDeleteFail'],
  ];
  const WRITES = ['setsSuccess', 'createSuccess', 'updateSuccess', 'deleteSuccess', 'compareAndSwapSuccess', 'compareAndDeleteSuccess'];

  // tile is a labelled number; sub is an optional line under it.
  function tile(k, v, sub, cls) {
    const t = el('div', 'tile' + (cls ? ' ' + cls : ''));
    t.append(el('div', 'k', k), el('div', 'v', v));
    if (sub) t.append(el('div', 'f', sub));
    return t;
  }

  // ago is a duration in words: 3d 4h, 5m 12s, 40s.
  function ago(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    if (m) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }

  function renderStore(c, self) {
    const s = c.store || {};
    $('store-of').textContent = self && self.name ? 'as counted on ' + self.name : '';
    const now = Date.now();
    const sum = (keys) => keys.reduce((a, k) => a + (s[k] || 0), 0);
    const reads = sum(['getsSuccess', 'getsFail']);
    let writesRate = '\u2013';
    let readsRate = '\u2013';
    if (lastStore && now > lastStore.at) {
      const dt = (now - lastStore.at) / 1000;
      writesRate = Math.max(0, (sum(WRITES) - lastStore.writes) / dt).toFixed(1);
      readsRate = Math.max(0, (reads - lastStore.reads) / dt).toFixed(1);
    }
    lastStore = { at: now, writes: sum(WRITES), reads };
    $('store-tiles').replaceChildren(
      tile('writes / s', writesRate, null, 'rate'),
      tile('reads / s', readsRate, null, 'rate'),
      tile('watchers', num(s.watchers)),
      tile('expired', num(s.expireCount)));
    const row = (label, col, bad) => {
      const tr = el('tr');
      tr.append(el('td', '', label));
      for (const pair of STORE_OPS) {
        const v = s[pair[col]] || 0;
        tr.append(el('td', bad && v ? 'bad' : '', num(v)));
      }
      return tr;
    };
    $('store-ops').tBodies[0].replaceChildren(row('ok', 0, false), row('failed', 1, true));
  }

  // renderRaft shows the leader, the term and indexes, and the leader's view
  // of its followers.
  function renderRaft(c) {
    const lead = c.members.find((m) => m.id === c.leader);
    const ls = lead && lead.status ? lead.status.stats || {} : {};
    const self = c.members.find((m) => m.id === c.self);
    const since = self && self.status && self.status.stats && self.status.stats.leaderInfo;
    $('raft-tiles').replaceChildren(
      tile('leader', c.leader ? memberName(c, c.leader) : 'none', null, c.leader ? 'lead' : ''),
      tile('term', num(c.term)),
      tile('raft index', lead && lead.status ? num(lead.status.raftIndex) : '\u2013', 'on the leader'),
      tile('leader for', c.leader && since && since.startTime ? ago(Date.now() - Date.parse(since.startTime)) : '\u2013',
        typeof ls.sendPkgRate === 'number' ? ls.sendPkgRate.toFixed(0) + ' msgs/s out' : null));

    const body = $('followers').tBodies[0];
    const note = $('repl-note');
    const st = c.leaderStats;
    $('repl-of').textContent = c.leader ? 'replication from ' + memberName(c, c.leader) : '';
    if (!st || !st.followers) {
      body.replaceChildren();
      note.hidden = false;
      note.textContent = c.leaderError ? 'leader stats unavailable: ' + c.leaderError : 'no leader';
      return;
    }
    note.hidden = true;
    const ms = (x) => (typeof x === 'number' ? x.toFixed(2) + ' ms' : '\u2013');
    const ids = Object.keys(st.followers).sort((a, b) => memberName(c, a).localeCompare(memberName(c, b)));
    body.replaceChildren(...ids.map((id) => {
      const f = st.followers[id];
      const lat = f.latency || {};
      const counts = f.counts || {};
      const tr = el('tr');
      tr.append(el('td', '', memberName(c, id)), el('td', '', ms(lat.current)), el('td', '', ms(lat.average)),
        el('td', '', ms(lat.maximum)), el('td', '', num(counts.success)), el('td', counts.fail ? 'bad' : '', num(counts.fail)));
      return tr;
    }));
  }

  // --- key browser ---

  let dir = '/';
  let selected = null;   // the key whose details are open
  let keysSeq = 0;       // the latest read of the open directory; older answers are dropped
  let keysInFlight = 0;

  function setDir(d) {
    dir = d;
    selected = null;
    $('key-detail').hidden = true;
    refreshKeys();
  }

  function renderCrumbs() {
    const nav = $('crumbs');
    const parts = dir.split('/').filter((s) => s !== '');
    const items = [];
    const crumb = (label, p, current) => {
      const b = el('button', '', label);
      b.type = 'button';
      if (current) b.setAttribute('aria-current', 'page');
      b.addEventListener('click', () => setDir(p));
      return b;
    };
    items.push(crumb('/', '/', parts.length === 0));
    parts.forEach((seg, i) => {
      if (i > 0) items.push(el('span', 'sep', '/'));
      items.push(crumb(seg, '/' + parts.slice(0, i + 1).join('/'), i === parts.length - 1));
    });
    nav.replaceChildren(...items);
  }

  function ttlText(n) {
    if (!n.ttl && n.ttl !== 0) return '';
    return 'ttl ' + n.ttl + 's';
  }

  async function refreshKeys() {
    const seq = ++keysSeq;
    keysInFlight++;
    renderCrumbs();
    const note = $('keys-note');
    const list = $('key-list');
    try {
      const r = await api(keysURL(dir) + '?sorted=true', { signal: AbortSignal.timeout(10000) });
      const body = await r.json();
      if (seq !== keysSeq) return; // the user moved on meanwhile
      if (!r.ok) {
        list.replaceChildren(el('li', 'empty', body.message + (body.cause ? ': ' + body.cause : '')));
        note.hidden = true;
        return;
      }
      note.hidden = true;
      const node = body.node;
      if (!node.dir) { // a key was opened by its path: show just it
        $('key-count').textContent = '';
        selected = node.key;
        list.replaceChildren(keyRow(node));
        showDetail(node);
        return;
      }
      const nodes = node.nodes || [];
      $('key-count').textContent = nodes.length === 1 ? '1 entry' : nodes.length + ' entries';
      if (nodes.length === 0) {
        list.replaceChildren(el('li', 'empty', 'empty directory'));
      } else {
        list.replaceChildren(...nodes.map(keyRow));
      }
      const sel = nodes.find((n) => n.key === selected && !n.dir);
      if (sel) showDetail(sel); else if (selected) { selected = null; $('key-detail').hidden = true; }
    } catch (e) {
      if (seq !== keysSeq) return;
      note.hidden = false;
      note.className = 'note bad';
      list.replaceChildren();
      $('key-detail').hidden = true;
      note.textContent = e instanceof AuthError
        ? authFailed(e) + (authHeader ? ': open a path it may read with the box above' : '')
        : 'cannot read ' + dir + ': ' + (e.message || e);
    } finally {
      keysInFlight--;
    }
  }

  function keyRow(n) {
    const name = n.key.slice(n.key.lastIndexOf('/') + 1);
    const li = el('li', n.dir ? 'dir' : 'file');
    li.dataset.key = n.key;
    if (n.key === selected) li.classList.add('sel');
    li.tabIndex = 0;
    li.append(el('span', 'icon'), el('span', 'kname', n.dir ? name + '/' : name),
      el('span', 'kval', n.dir ? '' : n.value));
    const meta = el('span', 'kmeta');
    const ttl = ttlText(n);
    if (ttl) meta.append(el('span', 'badge warn ttl', ttl));
    meta.append(el('span', '', '#' + n.modifiedIndex));
    li.append(meta);
    const open = () => {
      if (n.dir) { setDir(n.key); return; }
      selected = n.key;
      for (const x of $('key-list').children) x.classList.toggle('sel', x.dataset.key === n.key);
      showDetail(n);
    };
    li.addEventListener('click', open);
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
    return li;
  }

  function showDetail(n) {
    $('key-detail').hidden = false;
    $('detail-key').textContent = n.key;
    $('detail-value').textContent = n.value;
    const facts = $('detail-facts');
    const items = [];
    const fact = (k, v) => items.push(el('dt', '', k), el('dd', 'mono', v));
    fact('created index', n.createdIndex);
    fact('modified index', n.modifiedIndex);
    fact('size', new TextEncoder().encode(n.value || '').length + ' bytes');
    if (n.expiration) {
      fact('ttl', n.ttl + ' s');
      fact('expires', new Date(n.expiration).toLocaleString());
    } else {
      fact('ttl', 'none');
    }
    facts.replaceChildren(...items);
  }

  $('keys-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const p = '/' + $('keys-path').value.trim().split('/').filter((x) => x !== '').join('/');
    $('keys-path').value = '';
    setDir(p);
  });
  $('detail-close').addEventListener('click', () => {
    selected = null;
    $('key-detail').hidden = true;
    for (const x of $('key-list').children) x.classList.remove('sel');
  });
  $('watch-here').addEventListener('click', () => {
    $('watch-prefix').value = dir;
    $('watch-from').value = '';
    restartWatch();
  });

  // --- live watch ---

  let watchGen = 0;          // bumped to stop the running loop
  let watchAbort = null;     // aborts its long poll
  let keysSoon = null;

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function watchStatus(text, bad) {
    const s = $('watch-status');
    s.textContent = text;
    s.className = bad ? 'status bad' : 'status';
  }

  // currentIndex is the store's index as the keys API reports it for p
  // (its X-Etcd-Index comes with an error too, when p does not exist).
  async function currentIndex(p, signal) {
    const r = await api(keysURL(p), { signal });
    const idx = Number(r.headers.get('X-Etcd-Index'));
    if (!Number.isFinite(idx)) throw new Error('no X-Etcd-Index in the answer');
    return idx;
  }

  function restartWatch() {
    watchGen++;
    if (watchAbort) watchAbort.abort();
    let prefix = $('watch-prefix').value.trim() || '/';
    if (!prefix.startsWith('/')) prefix = '/' + prefix;
    const from = Number($('watch-from').value.trim());
    runWatch(watchGen, prefix, Number.isInteger(from) && from > 0 ? from : 0);
  }

  async function runWatch(gen, prefix, next) {
    const ctl = new AbortController();
    watchAbort = ctl;
    let failures = 0;
    const alive = () => gen === watchGen;
    while (alive()) {
      try {
        if (!next) {
          next = (await currentIndex(prefix, ctl.signal)) + 1;
        }
        watchStatus('watching ' + prefix + ' from index ' + next);
        const r = await api(keysURL(prefix) + '?wait=true&recursive=true&waitIndex=' + next, { signal: ctl.signal });
        const text = await r.text();
        if (!alive()) return;
        if (text.trim() === '') { // the member closed the poll (stopping, or a proxy's timeout): poll again
          await sleep(500);
          continue;
        }
        const body = JSON.parse(text);
        if (body.errorCode === 401) { // the events since next are out of the history: re-read
          const at = await currentIndex(prefix, ctl.signal);
          addInfo('events ' + next + '\u2013' + at + ' are no longer in the history (' + (body.cause || body.message) + '); re-read the tree, watching from ' + (at + 1));
          next = at + 1;
          refreshKeysSoon();
          continue;
        }
        if (!r.ok || !body.node) throw new Error(body.message || ('HTTP ' + r.status));
        failures = 0;
        next = body.node.modifiedIndex + 1;
        addEvent(body);
      } catch (e) {
        if (!alive()) return;
        if (e instanceof AuthError) {
          watchStatus(authFailed(e), true);
          return;
        }
        failures++;
        watchStatus('watch interrupted (' + (e.message || e) + '), retrying', true);
        await sleep(Math.min(5000, 500 * failures));
      }
    }
  }

  function clearEmpty() {
    const list = $('watch-events');
    if (list.firstChild && list.firstChild.classList.contains('empty')) list.firstChild.remove();
    while (list.children.length >= MAX_EVENTS) list.lastChild.remove();
    return list;
  }

  function addEvent(ev) {
    const list = clearEmpty();
    const n = ev.node;
    const li = el('li', 'fresh');
    li.dataset.key = n.key;
    li.dataset.action = ev.action;
    const t = el('time', '', new Date().toLocaleTimeString());
    const act = el('span', 'act ' + ev.action, ev.action);
    const what = el('span', 'what', n.key + (n.dir ? '/' : ''));
    if (n.value !== undefined) what.append(el('span', 'v', ' = ' + n.value));
    li.append(t, act, what, el('span', 'idx', '#' + n.modifiedIndex));
    list.prepend(li);
    const d = dir === '/' ? '/' : dir + '/';
    if (n.key.startsWith(d) || (ev.prevNode && ev.prevNode.key.startsWith(d))) refreshKeysSoon();
  }

  function addInfo(text) {
    clearEmpty().prepend(el('li', 'info', text));
  }

  function refreshKeysSoon() {
    clearTimeout(keysSoon);
    keysSoon = setTimeout(refreshKeys, 100);
  }

  $('watch-form').addEventListener('submit', (e) => {
    e.preventDefault();
    restartWatch();
  });
  $('watch-clear').addEventListener('click', () => {
    $('watch-events').replaceChildren(el('li', 'empty', 'no events yet'));
  });

  // --- start ---

  $('watch-events').replaceChildren(el('li', 'empty', 'no events yet'));
  refreshCluster();
  setInterval(() => {
    if (clusterOK && Date.now() - clusterOK > 3 * REFRESH_MS + 2000) { // answers stopped coming
      const live = $('live');
      live.className = 'live off';
      live.textContent = 'stale';
    }
    if (!document.hidden) refreshCluster();
  }, REFRESH_MS);
  refreshKeys();
  setInterval(() => { if (!document.hidden && keysInFlight === 0) refreshKeys(); }, KEYS_MS);
  restartWatch();
})();
