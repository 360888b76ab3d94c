// The local console's page: polls /console/api/snapshot every second and draws what it answers; the reply box
// posts to /console/api/conversations/<id>/replies. Everything that comes from the table, a customer's text
// above all, goes into the page as text (textContent, Text nodes): nothing here ever parses a string as HTML.
'use strict';

(() => {
  const POLL_MS = 1000;
  const CONVERSATION_ID = /^[0-9]+:[0-9]+$/;
  const formToken = document.querySelector('meta[name="console-form-token"]').content;
  const $ = (id) => document.getElementById(id);

  let selected = conversationInHash();
  let tag = ''; // the snapshot the page shows: the server answers "unchanged" while it still holds
  let polling = false;
  let pollAgain = false;
  let shownConversation = null;
  let accountNames = new Map(); // account id -> @username, from the latest snapshot

  // An element with its properties and children; strings become Text nodes, so nothing is parsed as HTML.
  function el(name, props = {}, ...children) {
    const node = document.createElement(name);
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') node.textContent = value;
      else if (key === 'class') node.className = value;
      else if (key === 'data') Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
    return node;
  }

  // Local time: the time alone today, with its date (YYYY-MM-DD) any other day.
  function when(iso, dateOnly = false) {
    if (!iso) return '—';
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    const two = (n) => String(n).padStart(2, '0');
    const day = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
    const clock = `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
    if (dateOnly) return day;
    return date.toDateString() === new Date().toDateString() ? clock : `${day} ${clock}`;
  }

  function time(iso, fallback, dateOnly = false) {
    return el('time', { datetime: iso, title: iso || fallback, text: when(iso, dateOnly) });
  }

  const TONES = {
    active: 'ok', expiring: 'warn', needs_reauthorisation: 'bad', disconnected: 'bad',
    QUEUED: 'muted', PENDING: 'info', SENT: 'info', DELIVERED: 'ok', READ: 'ok', UNKNOWN: 'warn', FAILED: 'bad',
  };

  function badge(text, tone) {
    return el('span', { class: `badge ${tone || TONES[text] || 'muted'}`, text });
  }

  function fact(term, ...description) {
    return [el('dt', { text: term }), el('dd', {}, ...description)];
  }

  // ------------------------------------------------------------------ accounts

  function renderAccounts(accounts) {
    const box = $('accounts');
    if (!accounts.length) {
      box.replaceChildren(el('p', { class: 'empty', text: 'No account is connected.' }));
      return;
    }
    box.replaceChildren(...accounts.map(accountCard));
  }

  function accountCard(account) {
    const subscription = account.subscription;
    const days = account.token_expires_in_days;
    const expiry = account.token_expires_at
      ? [time(account.token_expires_at, null, true), ` (in ${days} day${days === 1 ? '' : 's'})`]
      : ['unknown'];
    const webhooks = subscription.healthy
      ? [badge('subscribed', 'ok'), ` all ${subscription.fields.length} fields`]
      : [badge('incomplete', 'bad'), subscription.missing.length ? ` missing ${subscription.missing.join(', ')}` : ''];
    return el('article', { class: 'card account', data: { account: account.account_id, status: account.status } },
      el('div', { class: 'card-head' },
        el('h3', { text: account.username ? `@${account.username}` : account.account_id }),
        badge(account.status),
        account.paused_at ? badge('paused', 'warn') : null),
      el('dl', { class: 'facts' },
        ...fact('Account id', el('code', { text: account.account_id })),
        ...fact('Token expires', ...expiry),
        ...fact('Webhooks', ...webhooks),
        ...(subscription.last_error ? fact('Last error', subscription.last_error) : []),
        ...fact('Last checked', time(subscription.last_checked_at)),
        ...fact('Last webhook', time(account.last_webhook_at)),
        ...(account.status_detail ? fact('Why', account.status_detail) : [])));
  }

  // ------------------------------------------------------------------ conversations

  function renderConversations(conversations) {
    const box = $('conversations');
    if (!conversations.length) {
      box.replaceChildren(el('p', { class: 'empty' }, 'None yet: ', el('code', { text: 'make say' }), ' starts one.'));
      return;
    }
    const byAccount = new Map();
    for (const conversation of conversations) {
      if (!byAccount.has(conversation.account_id)) byAccount.set(conversation.account_id, []);
      byAccount.get(conversation.account_id).push(conversation);
    }
    const groups = [];
    for (const [accountId, list] of byAccount) {
      groups.push(el('h3', { class: 'group', text: accountNames.get(accountId) || accountId }));
      groups.push(el('ul', { class: 'conversations' }, ...list.map(conversationLink)));
    }
    box.replaceChildren(...groups);
  }

  function conversationLink(conversation) {
    const current = conversation.conversation_id === selected;
    return el('li', {},
      el('a', {
        href: `#c=${conversation.conversation_id}`,
        class: current ? 'conversation selected' : 'conversation',
        'aria-current': current ? 'true' : null,
        data: { conversation: conversation.conversation_id },
      },
      el('span', { class: 'who', text: conversation.customer_id }),
      el('span', { class: 'when', title: 'last activity' }, time(conversation.last_activity_at)),
      el('span', {
        class: 'counts',
        text: `${conversation.events} event${conversation.events === 1 ? '' : 's'} · ` +
          `${conversation.outbound} outbound`,
      })));
  }

  // ------------------------------------------------------------------ the conversation

  function renderConversation(conversation, problem) {
    const timeline = $('timeline');
    const form = $('reply');
    $('conversation-empty').hidden = Boolean(selected);
    form.hidden = !selected || Boolean(problem);
    if (!selected) {
      $('conversation-heading').textContent = 'Conversation';
      $('conversation-id').textContent = '';
      timeline.replaceChildren();
      shownConversation = null;
      return;
    }
    const account = accountNames.get(selected.split(':')[0]);
    $('conversation-id').textContent = `${account ? `${account} · ` : ''}conversation ${selected}`;
    if (problem || !conversation) {
      $('conversation-heading').textContent = 'Conversation';
      timeline.replaceChildren(el('li', { class: 'problem', text: problem || 'Loading…' }));
      return;
    }
    $('conversation-heading').textContent = `Conversation with ${conversation.customer_id}`;
    const entries = [];
    for (const event of conversation.events) {
      // The echo of a message the gateway sent is that message's DELIVERED: its card shows it.
      if (event.kind === 'echo' && event.outbound_key) continue;
      entries.push({ at: event.occurred_at, node: eventEntry(event) });
    }
    for (const message of conversation.outbound) {
      const first = message.statuses.find((s) => s.at);
      entries.push({ at: first ? first.at : null, node: outboundEntry(message) });
    }
    const moment = (entry) => (entry.at ? Date.parse(entry.at) : Number.MAX_SAFE_INTEGER);
    entries.sort((a, b) => moment(a) - moment(b));
    const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
    if (!entries.length) {
      timeline.replaceChildren(el('li', { class: 'problem', text: 'Nothing stored for this conversation yet.' }));
    } else {
      timeline.replaceChildren(...entries.map((entry) => entry.node));
    }
    if (atBottom || shownConversation !== selected) timeline.scrollTop = timeline.scrollHeight;
    shownConversation = selected;
  }

  function eventEntry(event) {
    const outbound = event.direction === 'outbound';
    let origin = null;
    if (event.kind === 'echo') origin = event.sent_by_gateway === false ? 'sent outside the gateway' : 'echo';
    return el('li', { class: `entry ${outbound ? 'out' : 'in'}`, data: { kind: event.kind, eventId: event.event_id } },
      el('div', { class: 'meta' },
        el('span', { class: 'kind', text: event.kind }),
        origin ? ` · ${origin}` : null,
        ' · ',
        time(event.occurred_at)),
      event.text ? el('p', { class: 'text', text: event.text }) : null,
      event.detail ? el('p', { class: 'detail', text: event.detail }) : null);
  }

  function outboundEntry(message) {
    let body;
    if (message.text) body = el('p', { class: 'text', text: message.text });
    else if (message.content) body = el('p', { class: 'detail', text: message.content });
    else body = el('p', { class: 'detail', text: `a ${message.kind} message: its content shows once Instagram echoes it` });
    const why = [message.reason, message.detail].filter(Boolean).join(': ');
    return el('li', { class: 'entry out message', data: { key: message.idempotency_key, status: message.status } },
      el('div', { class: 'meta' },
        el('span', { class: 'kind', text: message.kind }),
        ' · ',
        el('code', { class: 'key', text: message.idempotency_key }),
        message.queued_by_console ? ' · from this console' : null),
      body,
      el('ol', { class: 'statuses', 'aria-label': 'statuses' }, ...message.statuses.map(statusStep)),
      why ? el('p', { class: 'reason', text: why }) : null,
      message.error && message.error.message ? el('p', { class: 'reason', text: `Meta: ${message.error.message}` }) : null);
  }

  function statusStep(step) {
    return el('li', { class: 'step', data: { status: step.status } },
      badge(step.status),
      ' ',
      time(step.at, 'on the outbound queue before the sender took it: the queue keeps no time the console reads'));
  }

  // ------------------------------------------------------------------ callbacks

  function renderCallbacks(callbacks) {
    $('callbacks-empty').hidden = callbacks.length > 0;
    $('callbacks').hidden = callbacks.length === 0;
    $('callbacks').tBodies[0].replaceChildren(...callbacks.map((callback) => el('tr', {
      data: { status: callback.status || '', key: callback.idempotency_key || '' },
    },
    el('td', {}, time(callback.signed_at)),
    el('td', {}, callback.status ? badge(callback.status) : el('span', { class: 'subtle', text: callback.what || '—' })),
    el('td', {}, el('code', { text: callback.idempotency_key || '—' }), callback.reason ? ` ${callback.reason}` : null),
    el('td', {}, el('code', { class: 'mid', text: callback.message_id || '—' })),
    el('td', {}, callback.signature_ok ? badge('ok', 'ok') : badge('INVALID', 'bad')))));
  }

  // ------------------------------------------------------------------ keeping up

  function setLive(ok, why) {
    const live = $('live');
    live.className = ok ? 'live ok' : 'live stale';
    live.textContent = ok ? `live · ${when(new Date().toISOString())}` : `not answering (${why}): is make run up?`;
  }

  async function poll() {
    if (polling) {
      pollAgain = true;
      return;
    }
    polling = true;
    const asked = selected;
    try {
      const query = new URLSearchParams();
      if (asked) query.set('conversation', asked);
      if (tag) query.set('after', tag);
      const response = await fetch(`/console/api/snapshot?${query}`, { cache: 'no-store' });
      const snapshot = await response.json();
      if (!response.ok) throw new Error(snapshot.message || `HTTP ${response.status}`);
      setLive(true);
      if (asked === selected && !snapshot.unchanged) {
        tag = snapshot.tag;
        accountNames = new Map(snapshot.accounts.map((a) => [a.account_id, a.username ? `@${a.username}` : a.account_id]));
        renderAccounts(snapshot.accounts);
        renderConversations(snapshot.conversations);
        renderConversation(snapshot.conversation, snapshot.conversation_problem);
        renderCallbacks(snapshot.callbacks);
      }
    } catch (error) {
      setLive(false, error.message);
    } finally {
      polling = false;
      if (pollAgain || asked !== selected) {
        pollAgain = false;
        poll();
      }
    }
  }

  function conversationInHash() {
    const match = /^#c=(.+)$/.exec(window.location.hash);
    return match ? decodeURIComponent(match[1]) : null;
  }

  function choose(conversationId) {
    selected = conversationId;
    tag = ''; // everything again, the new conversation with it
    $('reply-notice').textContent = '';
    renderConversation(null, null);
    for (const link of document.querySelectorAll('a.conversation')) {
      const current = link.dataset.conversation === selected;
      link.classList.toggle('selected', current);
      if (current) link.setAttribute('aria-current', 'true');
      else link.removeAttribute('aria-current');
    }
    poll();
  }

  function notice(text, tone) {
    const line = $('reply-notice');
    line.className = `notice ${tone}`;
    line.textContent = text;
  }

  async function sendReply(event) {
    event.preventDefault();
    if (!selected || !CONVERSATION_ID.test(selected)) {
      notice('Choose a conversation first.', 'error');
      return;
    }
    const text = $('reply-text').value;
    const button = $('reply-send');
    button.disabled = true;
    notice('Sending…', '');
    try {
      const response = await fetch(`/console/api/conversations/${selected}/replies`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ text, form_token: formToken }),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.status === 202) {
        $('reply-text').value = '';
        notice(`Queued as ${answer.idempotency_key}: its statuses follow in the conversation.`, 'ok');
        poll();
      } else {
        notice(answer.message || `The console answered ${response.status}.`, 'error');
      }
    } catch (error) {
      notice(`The console did not answer (${error.message}): is make run up?`, 'error');
    } finally {
      button.disabled = false;
    }
  }

  window.addEventListener('hashchange', () => choose(conversationInHash()));
  $('reply').addEventListener('submit', sendReply);
  $('reply-text').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) $('reply').requestSubmit();
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });
  window.setInterval(() => { if (!document.hidden) poll(); }, POLL_MS);
  renderConversation(null, null);
  poll();
})();
